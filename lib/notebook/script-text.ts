/** Text that can sit inside an HTML `<script>` element: JavaScript and JSON escaped so that no `</script>` or `<!--` ends it early. */

/** Escapes text for safe use inside an HTML <script> element (no `</script>` or `<!--`). */
export function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** JSON text that can sit inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
