// Test-only SMTP server for the OAuth refresh specs: Nodemailer's
// smtp-server on 127.0.0.1 with STARTTLS and AUTH XOAUTH2 (offered after
// TLS only). It accepts one access token; any other gets the RFC 7628
// error challenge and then 535, as smtp-server does for an onAuth answer
// without a user. Every AUTH attempt and every message is written to
// OUTDIR so the Lua side reads them back.
//
// usage: node oauth_server.js PORT CERT KEY OUTDIR VALID_TOKEN
'use strict';
const fs = require('fs');
const path = require('path');
const { SMTPServer } = require('smtp-server');

const [port, certFile, keyFile, outDir, validToken] = process.argv.slice(2);
if (!validToken) {
    process.stderr.write('usage: node oauth_server.js PORT CERT KEY OUTDIR VALID_TOKEN\n');
    process.exit(2);
}

let seq = 0;
// Written whole then renamed: the reader never sees half a file.
function store(name, text) {
    const file = path.join(outDir, name);
    fs.writeFileSync(file + '.tmp', text);
    fs.renameSync(file + '.tmp', file);
}

const server = new SMTPServer({
    name: 'oauth.test',
    key: fs.readFileSync(keyFile),
    cert: fs.readFileSync(certFile),
    authMethods: ['XOAUTH2'],
    size: 10485760,
    logger: false,
    onAuth(auth, session, callback) {
        const ok = auth.method === 'XOAUTH2' && auth.accessToken === validToken;
        fs.appendFileSync(path.join(outDir, 'auth.log'),
            JSON.stringify({ method: auth.method, user: auth.username, token: auth.accessToken, ok }) + '\n');
        if (ok) {
            return callback(null, { user: auth.username });
        }
        return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.example.test/' } });
    },
    onData(stream, session, callback) {
        const chunks = [];
        stream.on('data', chunk => chunks.push(chunk));
        stream.on('end', () => {
            seq += 1;
            store(seq + '.eml', Buffer.concat(chunks));
            store(seq + '.json', JSON.stringify({
                user: session.user,
                from: session.envelope.mailFrom.address,
                to: session.envelope.rcptTo.map(r => r.address)
            }) + '\n');
            callback(null, 'queued as ' + seq);
        });
    }
});

server.on('error', err => process.stderr.write('oauth_server: ' + err.message + '\n'));
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('listening on ' + port + '\n'));
process.on('SIGTERM', () => process.exit(0));
