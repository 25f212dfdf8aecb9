"""Compiles the Python translations of the README examples (scripts/translations.mjs write python).

    python scripts/check_translations.py <dir>

For each file: it must compile; every import must resolve in this interpreter (the smoke test's
venv, with the wheel, aws-cdk-lib and constructs); and every name the example reads must be
imported, assigned or built in. It does not run the examples: their `declare const` inputs are
placeholders.
"""
import ast
import builtins
import importlib
import pathlib
import sys


def check(path: pathlib.Path) -> list[str]:
    source = path.read_text()
    try:
        tree = ast.parse(source, str(path))
        compile(tree, str(path), "exec")
    except SyntaxError as e:
        return [f"{path.name}:{e.lineno}: {e.msg}"]
    problems = []
    defined = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                try:
                    importlib.import_module(alias.name)
                except ImportError as e:
                    problems.append(f"{path.name}:{node.lineno}: import {alias.name}: {e}")
                defined.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            try:
                module = importlib.import_module(node.module)
            except ImportError as e:
                problems.append(f"{path.name}:{node.lineno}: from {node.module}: {e}")
                module = None
            for alias in node.names:
                if module is not None and not hasattr(module, alias.name):
                    problems.append(f"{path.name}:{node.lineno}: {node.module} has no {alias.name}")
                defined.add(alias.asname or alias.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in defined:
            problems.append(f"{path.name}:{node.lineno}: {node.id} is not defined (import it)")
    return problems


def main() -> None:
    files = sorted(pathlib.Path(sys.argv[1]).glob("*.py"))
    if not files:
        sys.exit(f"check_translations: no Python files in {sys.argv[1]}")
    problems = [p for f in files for p in check(f)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(f"check_translations: {len(problems)} problem(s) in the Python README examples: fix the ```ts example or scripts/translations.mjs")
    print(f"check_translations: {len(files)} Python README example(s) compile and import")


main()
