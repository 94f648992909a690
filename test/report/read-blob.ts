/** The JSON data blob of a rendered report page. */
export function readBlob(html: string): unknown {
  const m = /<script type="application\/json" id="dr-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no data blob in the page');
  return JSON.parse(m[1]!);
}
