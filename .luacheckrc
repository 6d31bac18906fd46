std = "max"
max_line_length = 120
-- The library and smtp-send run on 5.1, 5.3, 5.4 and LuaJIT (issue 7):
-- only globals and library fields all of them have ("min").
files["lua"] = { std = "min" }
files["bin/smtp-send"] = { std = "min" }
files["spec"] = { std = "+busted", max_line_length = 130 }
exclude_files = { "build", "spec/helpers/node" }
