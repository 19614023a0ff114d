// The nurture extension's client: starts `nurture lsp` (path configurable) for .nurture and
// .nurture-test files.
"use strict";

const path = require("path");
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function start() {
  const config = vscode.workspace.getConfiguration("nurture");
  const server = {
    command: config.get("server.path") || "nurture",
    args: config.get("server.args") || ["lsp"],
  };
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  const templates = (config.get("templates") || []).map((dir) => path.resolve(root, dir));
  client = new LanguageClient("nurture", "nurture", server, {
    documentSelector: [{ language: "nurture" }, { language: "nurture-test" }],
    initializationOptions: { templates },
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{nurture,nurture-test,j2}"),
    },
  });
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `nurture: could not start "${server.command} ${server.args.join(" ")}": ${error.message}. ` +
        "Set nurture.server.path to your nurture command (for example .venv/bin/nurture).",
    );
  });
}

async function restart() {
  if (client) {
    await client.stop();
  }
  await start();
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("nurture.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("nurture")) {
        restart();
      }
    }),
  );
  return start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
