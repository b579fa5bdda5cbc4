import { execFile } from 'node:child_process';

/**
 * POSTs a JSON body with curl, asking for `Expect: 100-continue` (curl sends it by itself only above a
 * size that differs between versions; .NET clients always do). With curl missing it rejects (ENOENT),
 * so a test that needs it fails rather than skips.
 */
export function curlPostWithExpect(
  url: string,
  body: string,
): Promise<{ status: string; stdout: string; stderr: string }> {
  const args = ['-sS', '-v', '--max-time', '20', '-H', 'content-type: application/json'];
  args.push('-H', 'expect: 100-continue', '--data-binary', '@-', url, '-w', '\n%{http_code}');
  return new Promise((resolve, reject) => {
    const child = execFile('curl', args, (error, stdout, stderr) =>
      error ? reject(error) : resolve({ status: stdout.split('\n').at(-1) ?? '', stdout, stderr }),
    );
    child.stdin?.end(body);
  });
}
