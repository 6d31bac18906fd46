// Reads a message back with Nodemailer's mailparser (simpleParser) for
// spec/unit/message_parse_back_spec.lua: prints a JSON summary and writes
// each attachment's bytes to OUT_DIR/att<N>.bin.
// usage: node parse_back.js MESSAGE_FILE OUT_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const { simpleParser } = require('mailparser');

function addresses(field) {
  if (!field) return null;
  const list = [];
  const walk = (values) => {
    for (const v of values) {
      if (v.group) walk(v.group);
      else list.push({ name: v.name || null, address: v.address });
    }
  };
  for (const f of Array.isArray(field) ? field : [field]) walk(f.value);
  return list;
}

async function main() {
  const [file, outDir] = process.argv.slice(2);
  const raw = fs.readFileSync(file);
  const parsed = await simpleParser(raw, { keepCidLinks: true, skipTextToHtml: true, skipHtmlToText: true });
  const attachments = parsed.attachments.map((a, i) => {
    const out = path.join(outDir, `att${i + 1}.bin`);
    fs.writeFileSync(out, a.content);
    return {
      filename: a.filename || null,
      content_type: a.contentType,
      content_id: a.cid || null,
      disposition: a.contentDisposition || null,
      size: a.content.length,
      file: out,
    };
  });
  const headerLines = (parsed.headerLines || []).map((h) => h.key);
  process.stdout.write(JSON.stringify({
    subject: parsed.subject === undefined ? null : parsed.subject,
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    reply_to: addresses(parsed.replyTo),
    has_bcc: headerLines.includes('bcc'),
    message_id: parsed.messageId || null,
    date: parsed.date ? parsed.date.toISOString() : null,
    text: typeof parsed.text === 'string' ? parsed.text : null,
    html: typeof parsed.html === 'string' ? parsed.html : null,
    attachments,
  }));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
