// The official TypeScript SDK client against one MCP endpoint, with a bearer token.
//
// Usage: node ts_client.mjs --url URL --transport streamable-http|sse [--token T] [--echo TEXT]
//
// Connects, lists the tools, calls `echo` with TEXT, closes, and prints one JSON object on
// stdout: {"transport", "server", "protocolVersion", "sessionId", "tools", "echo", "echoIsError"}.
// Any failure prints {"error": message, "status": HTTP status or null} and exits with code 1.

import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const TRANSPORTS = {
  "streamable-http": (url, requestInit) => new StreamableHTTPClientTransport(url, { requestInit }),
  sse: (url, requestInit) => new SSEClientTransport(url, { requestInit }),
};

function options() {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      transport: { type: "string", default: "streamable-http" },
      token: { type: "string" },
      echo: { type: "string", default: "hello from TypeScript" },
    },
    strict: true,
  });
  if (!values.url) {
    throw new Error("--url is required");
  }
  if (!(values.transport in TRANSPORTS)) {
    throw new Error(`--transport must be one of ${Object.keys(TRANSPORTS).join(", ")}`);
  }
  return values;
}

async function run({ url, transport: kind, token, echo }) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const transport = TRANSPORTS[kind](new URL(url), { headers });
  const client = new Client({ name: "mcp-front-ts-test", version: "1.0.0" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    const result = await client.callTool({ name: "echo", arguments: { text: echo } });
    const text = result.content.filter((block) => block.type === "text").map((block) => block.text);
    return {
      transport: kind,
      server: client.getServerVersion() ?? null,
      protocolVersion: transport.protocolVersion ?? null,
      sessionId: transport.sessionId ?? null,
      tools: tools.map((tool) => tool.name).sort(),
      echo: text.join(""),
      echoIsError: result.isError === true,
    };
  } finally {
    if (transport instanceof StreamableHTTPClientTransport) {
      await transport.terminateSession();
    }
    await client.close();
  }
}

try {
  const summary = await run(options());
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} catch (error) {
  const status = Number.isInteger(error?.code) ? error.code : null;
  process.stdout.write(`${JSON.stringify({ error: String(error?.message ?? error), status })}\n`);
  process.exitCode = 1;
}
