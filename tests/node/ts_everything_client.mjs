// The official TypeScript SDK client against `@modelcontextprotocol/server-everything`.
//
// Usage: node ts_everything_client.mjs --url URL --transport streamable-http|sse [--token T] [--echo TEXT]
//
// Connects (declaring the sampling capability), lists the tools, calls `echo` with TEXT,
// `get-sum` with 2 and 3, `trigger-long-running-operation` with progress notifications, and
// `trigger-sampling-request`, answering the server's `sampling/createMessage` itself. Closes,
// and prints one JSON object on stdout: {"transport", "server", "protocolVersion",
// "sessionId", "tools", "echo", "sum", "progress", "longRunning", "samplingPrompts",
// "sampling", "errors"}. Any failure prints {"error": message, "status": HTTP status or null}
// and exits with code 1.

import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const TRANSPORTS = {
  "streamable-http": (url, requestInit) => new StreamableHTTPClientTransport(url, { requestInit }),
  sse: (url, requestInit) => new SSEClientTransport(url, { requestInit }),
};
const SAMPLING_TOOL = "trigger-sampling-request";
const SAMPLING_ANSWER = "sampled by the TypeScript client";

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

function textOf(result) {
  return result.content
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("");
}

// The server registers its sampling tool once the client said `initialized`: wait for it.
async function listToolsOnceSamplingIsOffered(client) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name).sort();
    if (names.includes(SAMPLING_TOOL) || Date.now() > deadline) {
      return names;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function run({ url, transport: kind, token, echo }) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const transport = TRANSPORTS[kind](new URL(url), { headers });
  const client = new Client(
    { name: "mcp-front-ts-everything-test", version: "1.0.0" },
    { capabilities: { sampling: {} } },
  );
  const samplingPrompts = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    samplingPrompts.push(
      request.params.messages.map((message) => message.content?.text ?? "").join(""),
    );
    return {
      role: "assistant",
      content: { type: "text", text: SAMPLING_ANSWER },
      model: "ts-test-model",
      stopReason: "endTurn",
    };
  });
  await client.connect(transport);
  try {
    const tools = await listToolsOnceSamplingIsOffered(client);
    const echoed = await client.callTool({ name: "echo", arguments: { message: echo } });
    const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } });
    const progress = [];
    const longRunning = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: ({ progress: value, total }) => progress.push([value, total ?? null]) },
    );
    const sampling = await client.callTool({
      name: SAMPLING_TOOL,
      arguments: { prompt: "say something", maxTokens: 20 },
    });
    const results = [echoed, sum, longRunning, sampling];
    return {
      transport: kind,
      server: client.getServerVersion() ?? null,
      protocolVersion: transport.protocolVersion ?? null,
      sessionId: transport.sessionId ?? null,
      tools,
      echo: textOf(echoed),
      sum: textOf(sum),
      progress,
      longRunning: textOf(longRunning),
      samplingPrompts,
      sampling: textOf(sampling),
      errors: results.filter((result) => result.isError === true).length,
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
