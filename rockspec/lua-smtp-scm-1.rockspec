-- luarocks make rockspec/lua-smtp-scm-1.rockspec
package = "lua-smtp"
version = "scm-1"
source = {
  url = "git+https://example.invalid/lua-smtp.git",
}
description = {
  summary = "SMTP client with a C core: TLS (mbedTLS), SASL (libgsasl), pipelining",
  detailed = [[
require "smtp": an SMTP client (RFC 5321) modelled on Ocamlnet's Netsmtp,
with sockets, deadlines, reply parsing and DATA encoding in C.
]],
  homepage = "https://example.invalid/lua-smtp",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  MBEDTLS = { header = "mbedtls/ssl.h", library = "mbedtls" },
  GSASL = { header = "gsasl.h", library = "gsasl" },
}
build = {
  type = "builtin",
  modules = {
    ["smtp.core"] = {
      -- the same list as the Makefile's csrc/*.c (spec/unit/build_spec.lua)
      sources = {
        "csrc/bodyout.c",
        "csrc/codec.c",
        "csrc/compat.c",
        "csrc/dkim.c",
        "csrc/dotstuff.c",
        "csrc/lcodec.c",
        "csrc/lbody.c",
        "csrc/lconn.c",
        "csrc/ldkim.c",
        "csrc/ldotstuff.c",
        "csrc/lfsutil.c",
        "csrc/lpoolkey.c",
        "csrc/lreply.c",
        "csrc/lresolve.c",
        "csrc/lsasl.c",
        "csrc/lsmtp.c",
        "csrc/ltls.c",
        "csrc/membio.c",
        "csrc/net.c",
        "csrc/proxy.c",
        "csrc/reply.c",
        "csrc/resolve.c",
        "csrc/sasl.c",
        "csrc/tls.c",
      },
      incdirs = { "csrc", "$(MBEDTLS_INCDIR)", "$(GSASL_INCDIR)" },
      libdirs = { "$(MBEDTLS_LIBDIR)", "$(GSASL_LIBDIR)" },
      libraries = { "mbedtls", "mbedx509", "mbedcrypto", "gsasl", "pthread" },
      defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
    },
    ["smtp"] = "lua/smtp.lua",
    ["smtp.address"] = "lua/smtp/address.lua",
    ["smtp.client"] = "lua/smtp/client.lua",
    ["smtp.dkim"] = "lua/smtp/dkim.lua",
    ["smtp.error"] = "lua/smtp/error.lua",
    ["smtp.envelope"] = "lua/smtp/envelope.lua",
    ["smtp.extensions"] = "lua/smtp/extensions.lua",
    ["smtp.message"] = "lua/smtp/message.lua",
    ["smtp.outbox"] = "lua/smtp/outbox.lua",
    ["smtp.pipeline"] = "lua/smtp/pipeline.lua",
    ["smtp.pool"] = "lua/smtp/pool.lua",
    ["smtp.sasl"] = "lua/smtp/sasl.lua",
    ["smtp.trace"] = "lua/smtp/trace.lua",
    ["smtp.transport.cosocket"] = "lua/smtp/transport/cosocket.lua",
    ["smtp.transport.haproxy"] = "lua/smtp/transport/haproxy.lua",
    ["smtp.transport.loop"] = "lua/smtp/transport/loop.lua",
    ["smtp.transport.socket"] = "lua/smtp/transport/socket.lua",
    ["smtp.loop"] = "lua/smtp/loop.lua",
    ["smtp.loop.copas"] = "lua/smtp/loop/copas.lua",
    ["smtp.loop.cqueues"] = "lua/smtp/loop/cqueues.lua",
    ["smtp.loop.luv"] = "lua/smtp/loop/luv.lua",
  },
  install = { bin = { ["smtp-send"] = "bin/smtp-send" } },
}
