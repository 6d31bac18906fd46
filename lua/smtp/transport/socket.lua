-- The C connection (smtp.core Conn) as a transport. Conn already has the
-- transport methods (send, read_reply, send_data, set_deadline, close,
-- starttls, tls_info), so this only opens it and reports failures in the
-- transport shape: conn | nil, kind, message.
local core = require "smtp.core"

local socket_transport = {}

--- Opens a TCP (or UNIX socket) connection before the absolute deadline
-- (seconds on core.now()); through `proxy` ({type=, host=, port=, user=,
-- password=}) when given.
function socket_transport.connect(host, port, deadline, local_address, proxy)
  return core.connect(host, tostring(port), deadline, local_address, proxy)
end

return socket_transport
