export interface Dockerignore {
  /** In file order: a later pattern overrides an earlier one, and `!` re-includes. */
  patterns: string[];
}

export function parseDockerignore(text: string): Dockerignore {
  return {
    patterns: text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  };
}

// Docker's matching: `**/` spans directories, `*` and `?` stay within one; a match on a
// directory covers everything below it.
function toRegExp(pattern: string): RegExp {
  const p = pattern.replace(/^\//, '');
  let re = '';
  for (let i = 0; i < p.length; i += 1) {
    if (p.startsWith('**/', i)) {
      re += '(?:.*/)?';
      i += 2;
    } else if (p.startsWith('**', i)) {
      re += '.*';
      i += 1;
    } else if (p[i] === '*') re += '[^/]*';
    else if (p[i] === '?') re += '[^/]';
    else re += (p[i] as string).replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** Whether a file (relative to the build context) is kept out of the context. */
export function isIgnored(ignore: Dockerignore, file: string): boolean {
  let result = false;
  for (const p of ignore.patterns) {
    const negate = p.startsWith('!');
    if (toRegExp(negate ? p.slice(1) : p).test(file)) result = !negate;
  }
  return result;
}
