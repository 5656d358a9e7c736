// SPDX-License-Identifier: MIT
// Writes deliveries for test_serve_burst.sh, one JSON object a line:
// {delivery, event, signature, body}. Bodies are GitHub's own push examples
// (@octokit/webhooks-examples) with the repository's clone_url and the
// pushed commit replaced by the test's; signatures are made by
// @octokit/webhooks' sign(), as GitHub's are.
// Usage: node octokit_payloads.js OUT SECRET CLONE_URL COMMIT UNIQUE REPEATS
const fs = require('fs');
const { Webhooks } = require('@octokit/webhooks');
const examples = require('@octokit/webhooks-examples');

async function main() {
    const [out, secret, url, commit, unique, repeats] = process.argv.slice(2);
    const pushes = examples.find((e) => e.name === 'push').examples
        .filter((e) => e.ref.startsWith('refs/heads/') && !e.deleted);
    if (!pushes.length) throw new Error('no branch push in @octokit/webhooks-examples');
    const webhooks = new Webhooks({ secret });
    const lines = [];
    for (let i = 0; i < Number(unique); i++) {
        const p = JSON.parse(JSON.stringify(pushes[i % pushes.length]));
        p.repository.clone_url = url;
        p.after = commit;
        p.head_commit = p.head_commit && { ...p.head_commit, id: commit };
        const body = JSON.stringify(p);
        const signature = await webhooks.sign(body);
        lines.push({ delivery: `burst-${i}`, event: 'push', signature, body });
    }
    // Redeliveries: the same delivery id, body and signature, as GitHub's
    // "Redeliver" sends them.
    for (let i = 0; i < Number(repeats); i++)
        lines.push({ ...lines[(i * 7) % Number(unique)] });
    fs.writeFileSync(out, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}
main().catch((e) => { console.error(e.message); process.exit(1); });
