export interface PsqlInvocation {
  /** The connection URL without its password, then the caller's arguments. */
  args: string[];
  /** PGPASSWORD (when the URL had one): never on the command line, where `ps` shows it. */
  env: Record<string, string>;
}

/** How to run psql on `databaseUrl`: the password moves from the URL to the environment. */
export function psqlInvocation(databaseUrl: string, extraArgs: string[]): PsqlInvocation {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  return { args: [url.toString(), ...extraArgs], env: password ? { PGPASSWORD: password } : {} };
}
