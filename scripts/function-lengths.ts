// Prints the longest functions of src/ (lines from the TypeScript AST, a function's nested
// closures included), so that a function that grows past what reads on one screen is seen:
// `npm run lengths` prints the top 10; `-- --top 30`, `-- --over 60` change the cut.
// Functions allowed to stay long say why in a comment that starts with `long-function:`
// in the lines right above them; they are listed with that mark.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export interface FunctionLength {
  file: string;
  name: string;
  line: number;
  lines: number;
  explained: boolean;
}

const EXPLANATION = 'long-function:';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.generated.ts') ? [path] : [];
  });
}

function propertyName(name: ts.PropertyName | ts.BindingName, source: ts.SourceFile): string {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isPrivateIdentifier(name)
    ? name.text
    : name.getText(source);
}

function enclosingClass(node: ts.Node): string | undefined {
  for (let parent = node.parent; parent !== undefined; parent = parent.parent) {
    if (ts.isClassLike(parent)) return parent.name?.text ?? '<class>';
  }
  return undefined;
}

/** The name a reader would search for: `Class.method`, the variable or property it is bound to. */
function functionName(node: ts.FunctionLikeDeclaration, source: ts.SourceFile): string {
  const owner = enclosingClass(node);
  const qualify = (name: string): string => (owner === undefined ? name : `${owner}.${name}`);
  if (ts.isConstructorDeclaration(node)) return qualify('constructor');
  if (node.name !== undefined) return qualify(propertyName(node.name, source));
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return qualify(propertyName(parent.name, source));
  }
  return `<anonymous>`;
}

function isExplained(node: ts.Node, source: ts.SourceFile): boolean {
  // The comment may sit above the function or above the statement that declares it.
  let statement: ts.Node = node;
  while (
    statement.parent !== undefined &&
    !ts.isSourceFile(statement.parent) &&
    !ts.isBlock(statement.parent) &&
    !ts.isClassLike(statement.parent)
  ) {
    statement = statement.parent;
  }
  const ranges = ts.getLeadingCommentRanges(source.text, statement.getFullStart()) ?? [];
  return ranges.some((range) => source.text.slice(range.pos, range.end).includes(EXPLANATION));
}

export function functionLengths(root: string): FunctionLength[] {
  const found: FunctionLength[] = [];
  for (const path of sourceFiles(join(root, 'src'))) {
    const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
        const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        found.push({
          file: relative(root, path),
          name: functionName(node, source),
          line: start + 1,
          lines: end - start + 1,
          explained: isExplained(node, source),
        });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file));
}

function numberFlag(name: string): number | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : Number(process.argv[index + 1]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const all = functionLengths(process.cwd());
  const over = numberFlag('--over');
  const shown = over === undefined ? all.slice(0, numberFlag('--top') ?? 10) : all.filter((f) => f.lines > over);
  for (const f of shown) {
    const mark = f.explained ? '  (explained)' : '';
    process.stdout.write(`${String(f.lines).padStart(5)}  ${f.name}  ${f.file}:${f.line}${mark}\n`);
  }
  const count = (limit: number): number => all.filter((f) => f.lines > limit).length;
  const unexplained = all.filter((f) => f.lines > 80 && !f.explained).length;
  process.stdout.write(
    JSON.stringify({
      functions: all.length,
      over60: count(60),
      over80: count(80),
      over100: count(100),
      over80Unexplained: unexplained,
    }) + '\n',
  );
}
