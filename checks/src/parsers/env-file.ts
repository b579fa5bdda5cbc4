/** One `NAME=value` line of an env file such as .env.example. */
export interface EnvFileEntry {
  name: string;
  /** Everything after the `=`, untrimmed. */
  value: string;
  /** Written as `# NAME=value`: documented, with its default, but not set. */
  commented: boolean;
  line: number;
}
export interface EnvFile {
  entries: EnvFileEntry[];
}

export function parseEnvFile(text: string): EnvFile {
  const entries: EnvFileEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const m = /^(#?)[ \t]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw.replace(/\r$/, ''));
    if (m) entries.push({ name: m[2] as string, value: m[3] as string, commented: m[1] === '#', line: i + 1 });
  });
  return { entries };
}
