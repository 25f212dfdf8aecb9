// The Python and Java translations of the README examples, made to compile.
//
//   node scripts/translations.mjs fix                    (rosetta.mjs runs it after the extract)
//   node scripts/translations.mjs write python <dir>     (scripts/smoke-python.sh: then compiled and imported)
//   node scripts/translations.mjs write java <dir>       (scripts/smoke-java.sh: then compiled with javac)
//
// `fix` rewrites the translations in .jsii.tabl.json, which jsii-docgen (API.md) and jsii-pacmak
// (the docstrings of the Python and Java packages) read: jsii-rosetta leaves out Java imports of
// types it did not see imported (props and hooks structs, the fixture's Stack, java.util.Map),
// keeps TypeScript's single quotes in comments, and repeats names in Python imports.
// `write` turns each README example into a file that compiles on its own: the example's
// `declare const x: T` (a comment in Python, an uninitialized local in Java) becomes a typed
// placeholder, so the compilers check every name, import and call of the example.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const tabletPath = join(root, '.jsii.tabl.json');

/** jsii FQN prefix → Java package. */
function javaPackageOf(fqn) {
  const parts = fqn.split('.');
  const [assembly, ...rest] = parts;
  const name = rest.pop();
  const submodule = rest.join('.');
  switch (assembly) {
    case 'cdk-lambda-microvms': return { pkg: 'io.github.cdklambdamicrovms', name };
    case 'constructs': return { pkg: 'software.constructs', name };
    case 'cdk-nag': return { pkg: 'io.github.cdklabs.cdknag', name };
    case 'aws-cdk-lib': return {
      pkg: submodule ? `software.amazon.awscdk.services.${submodule.replace(/^aws_/, '').replace(/_/g, '.')}` : 'software.amazon.awscdk',
      name,
    };
    default: return undefined;
  }
}

/** Names the fixture declares for every example (rosetta/default.ts-fixture). */
const FIXTURE_TYPES = { Stack: 'software.amazon.awscdk.Stack' };
const JAVA_UTIL = ['Map', 'List'];

export function fixJava(source, fqnsReferenced) {
  const lines = source.split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const body = lines.filter((l) => !l.startsWith('import ')).join('\n');
  const imported = new Set(imports.map((l) => l.replace(/^import (static )?/, '').replace(/;$/, '')));
  const wildcard = new Set([...imported].filter((i) => i.endsWith('.*')).map((i) => i.slice(0, -2)));
  const simpleImported = new Set([...imported].map((i) => i.split('.').pop()));
  const code = body.replace(/\/\/.*$/gm, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const candidates = new Map();
  for (const fqn of fqnsReferenced) {
    if (fqn.includes('#')) continue;
    const java = javaPackageOf(fqn);
    if (java) candidates.set(java.name, java.pkg);
  }
  for (const [name, full] of Object.entries(FIXTURE_TYPES)) {
    if (!candidates.has(name)) candidates.set(name, full.slice(0, full.lastIndexOf('.')));
  }
  for (const name of JAVA_UTIL) candidates.set(name, 'java.util');
  const added = [];
  for (const [name, pkg] of candidates) {
    if (simpleImported.has(name) || wildcard.has(pkg)) continue;
    if (!new RegExp(`(^|[^\\w.])${name}\\b`).test(code)) continue;
    added.push(`import ${pkg}.${name};`);
    simpleImported.add(name);
  }
  // TypeScript's quotes in comments (`'al2023-1'`) read as Java char literals: use double quotes.
  const fixedBody = body.replace(/(\/\/.*)$/gm, (comment) => comment.replace(/'([^']*)'/g, '"$1"'))
    // Where rosetta did not resolve a construct's type it leaves `x.connections.` as a field access;
    // Java reads jsii properties through getters.
    .replace(/\.connections\./g, '.getConnections().');
  return [...imports, ...added.sort(), ...(imports.length || added.length ? [] : []), fixedBody.replace(/^\n+/, '')]
    .join('\n').replace(/(import [^\n]*;\n)(?!import)/, '$1\n');
}

export function fixPython(source) {
  // rosetta names aws-cdk-lib structs through the fixture's `import * as fixture_cdk`: import them.
  const fromFixture = [...new Set([...source.matchAll(/\bfixture_cdk\.(\w+)/g)].map((m) => m[1]))];
  let lines = source.replace(/\bfixture_cdk\.(\w+)/g, '$1').split('\n');
  if (fromFixture.length) {
    const lastImport = lines.reduce((last, l, i) => (/^(from \S+ )?import /.test(l) ? i : last), -1);
    lines.splice(lastImport + 1, 0, `from aws_cdk import ${fromFixture.join(', ')}`);
  }
  const seen = new Set();
  const out = [];
  for (const line of lines) {
    const m = /^from (\S+) import (.+)$/.exec(line);
    if (m) {
      const names = [...new Set(m[2].split(',').map((n) => n.trim()))].filter((n) => !seen.has(`${m[1]}:${n}`));
      names.forEach((n) => seen.add(`${m[1]}:${n}`));
      if (names.length) out.push(`from ${m[1]} import ${names.join(', ')}`);
      continue;
    }
    if (/^import /.test(line)) {
      if (seen.has(line)) continue;
      seen.add(line);
    }
    out.push(line);
  }
  return out.join('\n');
}

function readmeSnippets(tablet) {
  return Object.values(tablet.snippets)
    .filter((s) => s.location?.api?.api === 'moduleReadme')
    .sort((a, b) => a.location.field.line - b.location.field.line);
}

function fix() {
  const tablet = JSON.parse(readFileSync(tabletPath, 'utf8'));
  let changed = 0;
  for (const snippet of Object.values(tablet.snippets)) {
    const t = snippet.translations;
    if (t.java) {
      const fixed = fixJava(t.java.source, snippet.fqnsReferenced ?? []);
      if (fixed !== t.java.source) { t.java.source = fixed; changed++; }
    }
    if (t.python) {
      const fixed = fixPython(t.python.source);
      if (fixed !== t.python.source) { t.python.source = fixed; changed++; }
    }
  }
  writeFileSync(tabletPath, JSON.stringify(tablet, undefined, 2));
  console.log(`translations: fixed ${changed} Python/Java translation(s) in .jsii.tabl.json`);
}

/** `# name: Type` (rosetta's rendering of `declare const name: Type`) → a typed placeholder. */
function pythonFile(source) {
  const body = source.replace(/^# (\w+): ([\w.]+)$/gm, "$1: \"$2\" = typing.cast(\"$2\", None)");
  return `import typing\n${body}\n`;
}

/** Imports on top; `Type name;` declarations as fields; the rest in a method. */
function javaFile(className, source) {
  const lines = source.split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const rest = lines.filter((l) => !l.startsWith('import '));
  const fields = rest.filter((l) => /^[\w.<>]+ \w+;$/.test(l));
  const body = rest.filter((l) => !/^[\w.<>]+ \w+;$/.test(l));
  // A complete program (the quick start) is compiled as it is, under its own class name.
  if (body.some((l) => /^public class \w+/.test(l))) {
    const name = /^public class (\w+)/m.exec(source)[1];
    return { name, text: source };
  }
  return {
    name: className,
    text: [
      ...imports,
      '',
      `public class ${className} {`,
      ...fields.map((f) => `  static ${f}`),
      '  static void example() throws Exception {',
      ...body.map((l) => `    ${l}`),
      '  }',
      '}',
      '',
    ].join('\n'),
  };
}

function write(language, dir) {
  const tablet = JSON.parse(readFileSync(tabletPath, 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const snippets = readmeSnippets(tablet);
  for (const snippet of snippets) {
    const line = snippet.location.field.line;
    const source = snippet.translations[language]?.source;
    if (source === undefined) throw new Error(`README example at line ${line} has no ${language} translation`);
    if (language === 'python') {
      writeFileSync(join(dir, `readme_l${line}.py`), pythonFile(source));
    } else {
      const { name, text } = javaFile(`ReadmeL${line}`, source);
      writeFileSync(join(dir, `${name}.java`), text);
    }
  }
  console.log(`translations: wrote ${snippets.length} ${language} README example(s) to ${dir}`);
}

const [command, language, dir] = process.argv.slice(2);
if (command === 'fix') fix();
else if (command === 'write' && (language === 'python' || language === 'java') && dir) write(language, dir);
else {
  console.error('usage: node scripts/translations.mjs fix | write python|java <dir>');
  process.exit(2);
}
