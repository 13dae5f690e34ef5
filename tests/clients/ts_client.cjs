// A real TypeScript-SDK client (@modelcontextprotocol/sdk) on its defaults: no onprogress, the default request
// timeout. It does only what the server's words say: generate, then get_task(task_id, wait_seconds=50) until the
// task ends. It prints one JSON line per call, then the end.
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

async function main() {
  const [python, args] = [process.argv[2], JSON.parse(process.argv[3])];
  const transport = new StdioClientTransport({ command: python, args: ["-m", "wan_r2v_mcp"], env: process.env });
  const client = new Client({ name: "ts-sdk-test", version: "1.0.0" });
  await client.connect(transport);
  const call = async (name, argumentsGiven) => {
    const started = Date.now();
    const result = await client.callTool({ name, arguments: argumentsGiven });
    const body = result.structuredContent || {};
    console.log(JSON.stringify({ name, ms: Date.now() - started, status: body.status, task_id: body.task_id,
                                 error: result.isError ? result.content[0].text : null }));
    return body;
  };
  let view = await call("generate_r2v", args);
  while (view.status === "queued" || view.status === "running") {
    view = await call("get_task", { task_id: view.task_id, wait_seconds: 50 });
  }
  console.log(JSON.stringify({ end: view.status, local_path: view.local_path }));
  await client.close();
}

main().catch((error) => { console.log(JSON.stringify({ failed: String(error) })); process.exit(1); });
