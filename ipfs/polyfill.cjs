// Promise.withResolvers (ES2024) for Node.js releases that lack it: some of js-ipfs'
// dependencies call it. Loaded with `node -r` before anything else.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}
