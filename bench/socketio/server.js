// Reference server for `scripts/bench fanout` and `scripts/bench idle`: the Socket.IO 4 room
// broadcast most small chat servers are built on. A client emits `join` with a room name and is
// answered `joined`; every `msg` it emits is broadcast to its room (itself included), unchanged.
// WebSocket transport only, no compression: the same wire work dchat's WebSocket does.
//
// Listens on 127.0.0.1, on the port given as the first argument (0 or none: a free one), and
// prints `socketio listening on http://127.0.0.1:<port>` once ready. Stops when its parent
// closes stdin, so a benchmark that dies never leaves it running.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const server = http.createServer();
const io = new Server(server, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: 1e6,
});

io.on("connection", (socket) => {
  socket.on("join", (room) => {
    if (typeof room !== "string") return;
    socket.join(room);
    socket.data.room = room;
    socket.emit("joined", room);
  });
  socket.on("msg", (data) => {
    const room = socket.data.room;
    if (room !== undefined) io.to(room).emit("msg", data);
  });
});

server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  console.log(`socketio listening on http://127.0.0.1:${server.address().port}`);
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
