/**
 * Splits a command line the way a POSIX shell splits words, and does nothing else a shell
 * does (no variables, globs or pipes): the agent runs the words as they are. Single quotes
 * keep everything literal; double quotes let a backslash escape `"`, `\`, `$` and `` ` ``;
 * outside quotes a backslash keeps the next character. Throws on an unclosed quote.
 */
export function splitCommandWords (line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('the command has an unclosed \' quote');
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1])) j++;
        word += line[j];
      }
      if (j >= line.length) throw new Error('the command has an unclosed " quote');
      inWord = true;
      i = j;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The words back as one line a shell would split the same way, for display. */
export function joinCommandWords (words: readonly string[]): string {
  return words.map(w => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`).join(' ');
}
