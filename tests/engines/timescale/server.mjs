// Test-only PostgreSQL wire-protocol server for the TimescaleDB (Timescale License) WASM build.
//
//   node server.mjs DATA_DIR PORT
//
// DATA_DIR: a directory (created if missing) or "memory://". PORT: TCP port on 127.0.0.1, 0 = any.
// Prints one line "READY 127.0.0.1:<port>" on stdout once it accepts connections.
// SIGTERM/SIGINT close the server and the database, then exit 0.
// With MA_EXIT_ON_STDIN_EOF=1 it also shuts down when stdin closes (the parent died).
//
// Limits (see /work/shared/TIMESCALE.md): ONE client connection at a time, no COPY FROM STDIN,
// no background workers. Never use this as a production database.
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const [dataDir, portArg] = process.argv.slice(2)
if (!dataDir || portArg === undefined || !/^\d+$/.test(portArg)) {
  console.error('usage: node server.mjs DATA_DIR PORT')
  process.exit(2)
}

const host = '127.0.0.1'
const db = await PGlite.create({ dataDir, extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, port: Number(portArg), host })

let stopping = false
async function shutdown(reason) {
  if (stopping) return
  stopping = true
  console.log(`STOPPING (${reason})`)
  try {
    await server.stop()
  } catch (err) {
    console.error('server.stop failed:', err)
  }
  try {
    await db.close()
  } catch (err) {
    console.error('db.close failed:', err)
  }
  process.exit(0)
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
if (process.env.MA_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin closed'))
  process.stdin.on('error', () => shutdown('stdin error'))
  process.stdin.resume()
}

await server.start()
// start() resolves after listen(); the bound port is in the server's address.
const conn = server.getServerConn() // "127.0.0.1:<port>" (port resolved when PORT was 0)
console.log(`READY ${conn}`)
