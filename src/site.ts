/**
 * Site names: what the events table's check allows. The one copy in TypeScript, for the
 * service and the dashboard (web/ imports it; this file must stay free of imports). The
 * SQL copies live in shipped migrations, which are never edited, and the dashboard's
 * <input pattern> in web/index.html: test/site.test.ts keeps them all in agreement.
 */
export const SITE_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;
export const SITE_RULE =
  'must be a site name: lowercase letters, digits, ".", "_" or "-" (starting with a letter or digit), at most 128';
