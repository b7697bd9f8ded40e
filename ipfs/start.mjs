// Starts a throwaway IPFS node (js-ipfs) for tests: a fresh repository in a temporary directory
// initialised with the `test` profile, the Kubo RPC API and the gateway on free 127.0.0.1 ports,
// and no network at all (no swarm listeners, no bootstrap peers, no MDNS, no preload).
//
// Prints, once the API answers:
//   API http://127.0.0.1:<port>
//   GATEWAY http://127.0.0.1:<port>
//   REPO <directory>
// and runs until SIGINT/SIGTERM, or until its parent exits or kills it; then removes the
// repository it created (not one given with --repo).
//
// Usage: node -r ./polyfill.cjs start.mjs [--repo DIR]   (see ./start)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Daemon } from 'ipfs-daemon'

const args = process.argv.slice(2)
const repoArg = args.indexOf('--repo')
const ownRepo = repoArg === -1
const repo = ownRepo ? mkdtempSync(join(tmpdir(), 'dchat-ipfs-')) : args[repoArg + 1]

const daemon = new Daemon({
  repo,
  init: { profiles: ['test'], emptyRepo: true },
  offline: true,
  preload: { enabled: false },
  silent: true,
  config: {
    Addresses: {
      API: '/ip4/127.0.0.1/tcp/0',
      Gateway: '/ip4/127.0.0.1/tcp/0',
      Swarm: [],
      // No gRPC-over-WebSocket server: it would take a fixed port (5003).
      RPC: '',
      Delegates: []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } }
  }
})

let stopping = false
async function stop (code) {
  if (stopping) return
  stopping = true
  try {
    await daemon.stop()
  } catch (err) {
    console.error('ipfs: stopping failed:', err?.message ?? err)
  }
  if (ownRepo) rmSync(repo, { recursive: true, force: true })
  process.exit(code)
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))
// Whoever started the daemon may die without stopping it (a killed test run): follow it.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop(0)
}, 1000).unref()

try {
  await daemon.start()
} catch (err) {
  console.error('ipfs: the daemon did not start:', err?.stack ?? err)
  await stop(1)
}
const api = `http://127.0.0.1:${daemon._httpApi._apiServers[0].info.port}`
const gateway = `http://127.0.0.1:${daemon._httpGateway._gatewayServers[0].info.port}`
// Ready means the RPC API answers, not just that the server is bound.
const res = await fetch(`${api}/api/v0/id`, { method: 'POST' })
if (!res.ok) {
  console.error(`ipfs: the API at ${api} answered ${res.status}`)
  await stop(1)
}
console.log(`API ${api}`)
console.log(`GATEWAY ${gateway}`)
console.log(`REPO ${repo}`)
