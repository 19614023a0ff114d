// Renders a .nurture file as HTML coloured by this extension's TextMate grammar (the
// same tokenizer VS Code uses: vscode-textmate on Oniguruma), for the README's screenshot.
//   node render.js ../../campaigns/welcome.nurture out/sample.html [first line] [last line]
"use strict";

const fs = require("fs");
const path = require("path");
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

// Colours of VS Code's "Dark Modern" theme for the scopes this grammar gives.
const THEME = [
  ["comment", "#6A9955"],
  ["string.quoted.double.template-name", "#4EC9B0"],
  ["meta.embedded", "#9CDCFE"],
  ["string", "#CE9178"],
  ["storage.type", "#569CD6"],
  ["entity.name", "#DCDCAA"],
  ["support.type", "#4EC9B0"],
  ["variable", "#9CDCFE"],
  ["constant.language", "#4FC1FF"],
  ["constant", "#B5CEA8"],
  ["keyword.other.unit", "#B5CEA8"],
  ["keyword.operator", "#D4D4D4"],
  ["keyword", "#C586C0"],
];

function colour(scopes) {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const found = THEME.find(([prefix]) => scopes[i].startsWith(prefix));
    if (found) return found[1];
  }
  return "#D4D4D4";
}

function escape(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

async function main() {
  const [source, out, first, last] = process.argv.slice(2);
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async () => {
      const file = path.join(__dirname, "syntaxes", "nurture.tmLanguage.json");
      return textmate.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
    },
  });
  const grammar = await registry.loadGrammar("source.nurture");
  const lines = fs.readFileSync(source, "utf8").split("\n");
  const from = Number(first || 1) - 1;
  const to = Number(last || lines.length);
  let state = textmate.INITIAL;
  const html = [];
  lines.slice(0, to).forEach((line, number) => {
    const result = grammar.tokenizeLine(line, state);
    state = result.ruleStack;
    if (number < from) return;
    const spans = result.tokens.map((t) => {
      const text = escape(line.slice(t.startIndex, t.endIndex));
      return `<span style="color:${colour(t.scopes)}">${text}</span>`;
    });
    html.push(`<span class="n">${number + 1}</span>${spans.join("")}`);
  });
  const page = `<!doctype html><meta charset="utf-8"><title>${escape(path.basename(source))}</title>
<style>body{margin:0;background:#1F1F1F}pre{margin:0;padding:12px 16px;color:#D4D4D4;
font:14px/20px "DejaVu Sans Mono","WenQuanYi Zen Hei Mono",monospace}
.n{display:inline-block;width:3em;color:#6E7681;text-align:right;margin-right:1.5em}</style>
<pre>${html.join("\n")}</pre>\n`;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, page);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
