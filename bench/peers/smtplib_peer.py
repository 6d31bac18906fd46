"""Python smtplib as a benchmark peer (bench/run.lua drives it).
  smtplib_peer.py loop|conn <host> <port> <count> <msgfile> [tls]
  smtplib_peer.py file <host> <port> 1 <msgfile> [tls]   (whole file in memory)
  smtplib_peer.py attach <host> <port> 1 <binfile> [tls] (email package, base64)
Prints "ok <messages> <seconds>" (seconds from before connect to after QUIT)."""
import smtplib, ssl, sys, time

mode, host, port, count, path = sys.argv[1:6]
tls = len(sys.argv) > 6 and sys.argv[6] == "tls"
port, count = int(port), int(count)
FROM, TO = "bench@example.test", ["sink@example.test"]


def connect():
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = smtplib.SMTP_SSL(host, port, context=ctx)
    else:
        s = smtplib.SMTP(host, port)
    s.ehlo("bench.example.test")
    return s


t0 = time.monotonic()
sent = 0
if mode == "loop":
    msg = open(path, "rb").read()
    s = connect()
    for _ in range(count):
        s.sendmail(FROM, TO, msg)
        sent += 1
    s.quit()
elif mode == "conn":
    msg = open(path, "rb").read()
    for _ in range(count):
        s = connect()
        s.sendmail(FROM, TO, msg)
        s.quit()
        sent += 1
elif mode == "file":
    s = connect()
    s.sendmail(FROM, TO, open(path, "rb").read())
    s.quit()
    sent = 1
elif mode == "attach":
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = FROM, TO[0], "attachment"
    m.set_content("See the attachment.\n")
    m.add_attachment(open(path, "rb").read(), maintype="application",
                     subtype="octet-stream", filename=path.rsplit("/", 1)[-1])
    s = connect()
    s.sendmail(FROM, TO, m.as_bytes())
    s.quit()
    sent = 1
else:
    sys.exit("unknown mode " + mode)
print("ok %d %.4f" % (sent, time.monotonic() - t0))
