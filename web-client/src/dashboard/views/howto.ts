/**
 * "How to add a node": the commands a node owner types, exactly as they work
 * (the agent's npm package and its `peerway-agent` bin), and one fresh token
 * for `peerway-agent login`.
 */
import { api } from '../api';
import { commandLine, h } from '../dom';
import { config } from '../config';

export function howToAddNode(open = false): HTMLElement {
  const tokenLine = h('div', { class: 'cmds' });
  const makeToken = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        makeToken.disabled = true;
        try {
          const t = await api<{ token: string }>('POST', '/api/tokens', { name: 'agent' });
          // One token per node: the button goes, and says where more are made.
          tokenLine.replaceChildren(
            cmd(`peerway-agent login ${t.token}`, 'the login command'),
            h(
              'p',
              { class: 'muted' },
              'This token is for this node. For another node, or to revoke this one, use the ',
              h('a', { href: '/tokens' }, 'Tokens page'),
              '.',
            ),
          );
          makeToken.hidden = true;
        } catch (e) {
          tokenLine.replaceChildren(
            h('p', { class: 'error', role: 'alert' }, (e as Error).message),
          );
          makeToken.disabled = false;
        }
      },
    },
    'Create a token for this node',
  );
  return h(
    'details',
    { class: 'howto', ...(open ? { open: true } : {}) },
    h('summary', {}, 'How to add a node'),
    h(
      'ol',
      {},
      h(
        'li',
        {},
        'On the machine that runs your service, install the agent (it needs Node.js 20.11 or newer):',
        cmd('npm install -g @peerway/node-agent', 'the install command'),
      ),
      h(
        'li',
        {},
        'Point it at this server:',
        cmd(`peerway-agent init --server ${config.publicUrl}`, 'the init command'),
      ),
      h(
        'li',
        {},
        'Sign it in to your account with a fresh token (shown once):',
        tokenLine,
        makeToken,
      ),
      h(
        'li',
        {},
        'Say what to serve, then run it:',
        cmd('peerway-agent expose myapp http://127.0.0.1:3000 --public', 'the expose command'),
        cmd('peerway-agent run', 'the run command'),
      ),
    ),
    h(
      'p',
      { class: 'muted' },
      'Or run the agent without a token: it prints a claim link to open here.',
    ),
  );
}

function cmd(text: string, what: string): HTMLElement {
  return commandLine(text, `Copy ${what}`);
}
