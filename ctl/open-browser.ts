import { spawn } from 'node:child_process';

/** The program that opens a URL in the user's browser: `open` on macOS, `xdg-open` elsewhere (freedesktop). */
export function browserOpener (platform: NodeJS.Platform): string {
  return platform === 'darwin' ? 'open' : 'xdg-open';
}

/**
 * Opens `url` in the user's browser, detached (the browser outlives fsctl); resolves with
 * null once the opener ran successfully, or with why it could not (not installed, no
 * display), so the caller can say so next to the address it prints anyway.
 */
export function openInBrowser (url: string, platform: NodeJS.Platform): Promise<string | null> {
  const opener = browserOpener(platform);
  return new Promise(resolve => {
    const child = spawn(opener, [url], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', err => resolve(`${opener} could not run (${(err as NodeJS.ErrnoException).code ?? err.message})`));
    child.on('exit', code => {
      const said = stderr.trim() === '' ? '' : `: ${stderr.trim().split('\n')[0]}`;
      resolve(code === 0 ? null : `${opener} failed (exit status ${code}${said})`);
    });
    child.unref();
  });
}
