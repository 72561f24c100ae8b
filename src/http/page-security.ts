/**
 * The headers of the HTML pages this service serves (the dashboard at /, Swagger UI at
 * /docs): a page may load only files of this service (scripts and styles are files, never
 * inline), images of its own or embedded as data: URIs (icons in stylesheets), and call
 * only this service; it may not be framed, post forms, or change its base URL.
 */
export const PAGE_SECURITY_HEADERS = {
  'Content-Security-Policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
} as const;
