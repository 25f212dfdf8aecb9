// README examples compile, and API.md shows them in TypeScript, Python and Java.
//
//   node scripts/rosetta.mjs        (after `jsii`: reads .jsii, writes .jsii.tabl.json and API.md)
//
// 1. `jsii-rosetta extract --strict` compiles every ```ts example of the README and of the doc
//    comments (with rosetta/default.ts-fixture around it) and translates it; one example that does
//    not compile fails the run. The translations go to .jsii.tabl.json, which jsii-pacmak reads
//    too, so the Python and Java docstrings carry translated examples.
// 2. jsii-docgen renders the README and the API reference in each language from those
//    translations; API.md gets one section per language (anchors of the Python and Java sections
//    are prefixed with the language, so links stay within a language).
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Documentation, Language } from 'jsii-docgen';

const root = new URL('..', import.meta.url).pathname;
const output = join(root, process.argv[2] ?? 'API.md');

if (!existsSync(join(root, '.jsii'))) {
  console.error('rosetta: no .jsii: compile first (npx jsii --silence-warnings=reserved-word)');
  process.exit(1);
}

const started = Date.now();
const extract = spawnSync(join(root, 'node_modules', '.bin', 'jsii-rosetta'), ['extract', '--strict', '.jsii'], {
  cwd: root,
  stdio: 'inherit',
});
if (extract.status !== 0) {
  console.error('rosetta: an example does not compile (see the diagnostics above): fix the ```ts block in README.md or the @example in src/');
  process.exit(extract.status ?? 1);
}
console.log(`rosetta: examples compiled and translated (${((Date.now() - started) / 1000).toFixed(1)} s)`);
// jsii-rosetta's Java and Python need a few repairs to compile (scripts/translations.mjs).
const fix = spawnSync(process.execPath, [join(root, 'scripts', 'translations.mjs'), 'fix'], { cwd: root, stdio: 'inherit' });
if (fix.status !== 0) process.exit(fix.status ?? 1);

const LANGUAGES = [
  { language: Language.TYPESCRIPT, title: 'TypeScript', prefix: '' },
  { language: Language.PYTHON, title: 'Python', prefix: 'python-' },
  { language: Language.JAVA, title: 'Java', prefix: 'java-' },
];

/** For each line of `markdown`: whether it is a fence or inside a fenced code block. */
function fenced(lines) {
  let fence;
  return lines.map((line) => {
    const f = /^\s*(```+|~~~+)/.exec(line);
    if (f) {
      if (!fence) fence = f[1];
      else if (f[1].startsWith(fence)) fence = undefined;
      return true;
    }
    return fence !== undefined;
  });
}

/** Shifts markdown headings down by `by` levels, outside fenced code blocks. */
function demoteHeadings(markdown, by) {
  const lines = markdown.split('\n');
  const code = fenced(lines);
  return lines.map((line, i) => (!code[i] && /^#{1,5} /.test(line) ? '#'.repeat(by) + line : line)).join('\n');
}

/**
 * The README's quick start has one subsection per language (`### TypeScript`, `### Python`,
 * `### Java`): each language's section of API.md keeps its own only (the TypeScript example,
 * translated, would otherwise appear under a "TypeScript" heading in Python).
 */
function onlyQuickStartOf(markdown, title) {
  const lines = markdown.split('\n');
  const code = fenced(lines);
  let inQuickStart = false;
  let keep = true;
  return lines.filter((line, i) => {
    const heading = code[i] ? undefined : /^(#{1,6}) (.*)$/.exec(line);
    if (heading && heading[1].length <= 2) {
      inQuickStart = heading[1].length === 2 && heading[2].trim() === 'Quick start';
      keep = true;
    } else if (heading && inQuickStart && heading[1].length === 3) {
      keep = heading[2].trim() === title;
    }
    return keep;
  }).join('\n');
}

const sanitize = (id) => id.replace(/\s+/g, '-');

const docs = await Documentation.forProject(root);
try {
  const sections = [];
  // One language at a time: docgen chdirs into a temporary directory while it transliterates.
  for (const { language, title, prefix } of LANGUAGES) {
    const formatting = {
      language,
      anchorFormatter: (type) => prefix + sanitize(type.id),
      linkFormatter: (type, metadata) => (type.packageName === metadata.packageName && type.submodule === metadata.submodule
        ? `<a href="#${prefix}${sanitize(type.id)}">${type.displayName}</a>`
        : type.fqn),
    };
    const readme = await docs.toMarkdown({ ...formatting, readme: true, apiReference: false });
    // docgen's API reference already uses all six heading levels: it stays at the top level.
    const api = await docs.toMarkdown({
      ...formatting, readme: false, apiReference: true,
      header: { title: `${title} API Reference`, id: `${title.toLowerCase()}-api-reference` },
    });
    sections.push([
      `# ${title} <a name="${title}" id="${title.toLowerCase()}"></a>`,
      '',
      demoteHeadings(onlyQuickStartOf(readme.render(), title), 1),
      '',
      api.render(),
    ].join('\n'));
  }
  const header = [
    '# cdk-lambda-microvms: README and API reference in every language',
    '',
    'Generated by `node scripts/rosetta.mjs` from the jsii assembly: the README and the API reference',
    'in each language the library is published in. The examples are written in TypeScript and',
    'translated by jsii-rosetta, which compiles each of them first (strict mode).',
    '',
    LANGUAGES.map(({ title }) => `[${title}](#${title.toLowerCase()}) ([API](#${title.toLowerCase()}-api-reference))`).join(' · '),
    '',
  ].join('\n');
  writeFileSync(output, `${header}\n${sections.join('\n\n')}\n`);
  console.log(`rosetta: wrote ${output} (${LANGUAGES.map((l) => l.title).join(', ')}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await docs.cleanup();
}
