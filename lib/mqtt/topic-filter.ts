/**
 * MQTT topic filters with `+` (one level) and `#` (the rest), as brokers match them. Compiled once per
 * configured pattern; matching runs per message, so it is a plain loop over levels, no regex.
 */
export function compileTopicFilter(filter: string): (topic: string, levels?: string[]) => boolean {
  const f = filter.split('/');
  const hashAt = f.indexOf('#');
  if (hashAt !== -1 && hashAt !== f.length - 1)
    throw new Error(`'#' must be the last level of topic filter "${filter}"`);
  if (f.some((l) => l !== '+' && l !== '#' && /[+#]/.test(l)))
    throw new Error(`wildcards must fill a whole level in "${filter}"`);
  // `levels` lets a caller that already split the topic (for the mapping) match without splitting again.
  return (topic: string, levels?: string[]) => {
    const t = levels ?? topic.split('/');
    for (let i = 0; i < f.length; i++) {
      const level = f[i]!;
      if (level === '#') return !(i === 0 && t[0]!.startsWith('$'));
      if (i >= t.length) return false;
      if (level === '+') {
        if (i === 0 && t[0]!.startsWith('$')) return false;
        continue;
      }
      if (level !== t[i]) return false;
    }
    return t.length === f.length;
  };
}
