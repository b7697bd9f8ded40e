// An OpenID Connect provider configured like "Sign In with LinkedIn using OpenID Connect", for the
// gateway's tests. It is panva's oidc-provider (a certified OP) with LinkedIn's routes, client
// authentication, signing algorithm and claim shapes, on a loopback port.
//
// Usage: node provider.mjs --client-id ID --client-secret SECRET --redirect-uri URI [--port 0]
//
// Prints one line `listening on http://127.0.0.1:<port>` when ready. The issuer is
// `http://127.0.0.1:<port>/oauth` (LinkedIn: https://www.linkedin.com/oauth) and discovery is
// served at `<issuer>/.well-known/openid-configuration`, as OpenID Connect Discovery asks.
//
// Login and consent are approved without any page: the interaction route signs in the account
// named by its `login` query parameter (default `alice`) and grants what the client asked for.
//
// Test-only switches on the same port, under /__test/ (never part of a real provider):
//   POST /__test/accounts  {"sub": ..., claims...}   add or replace an account
//   POST /__test/mode      {"id_token": MODE}        how the token endpoint's id_token is altered:
//        normal | unknown_key | expired | wrong_audience | wrong_issuer | wrong_nonce
//   POST /__test/rotate                              new signing key; the old one stays published
//   GET  /__test/stats                               {"jwks": n, "token": n, "userinfo": n}
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
    options: {
        port: { type: 'string', default: '0' },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
    },
});
for (const required of ['client-id', 'client-secret', 'redirect-uri']) {
    if (!args[required]) {
        console.error(`provider.mjs: --${required} is required`);
        process.exit(2);
    }
}

const routes = {
    authorization: '/oauth/v2/authorization',
    token: '/oauth/v2/accessToken',
    userinfo: '/v2/userinfo',
    jwks: '/oauth/openid/jwks',
};

// The accounts the provider can sign in. Claims as LinkedIn returns them: `locale` is an object,
// `picture` a media URL.
const accounts = new Map();
function addAccount(claims) {
    accounts.set(claims.sub, claims);
}
addAccount({
    sub: 'alice',
    name: 'Alice Example',
    given_name: 'Alice',
    family_name: 'Example',
    picture: 'https://media.licdn.example/dms/image/alice.jpg',
    email: 'alice@example.com',
    email_verified: true,
    locale: { country: 'US', language: 'en' },
});

const stats = { jwks: 0, token: 0, userinfo: 0 };
let idTokenMode = 'normal';

async function newKey() {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

// Signing keys, newest first: oidc-provider signs with the first and publishes all of them.
const keys = [await newKey()];
// A key that is never published, for id_tokens "signed by an unknown key".
const strayKey = await newKey();

function build(issuer) {
    const provider = new Provider(issuer, {
        clients: [
            {
                client_id: args['client-id'],
                client_secret: args['client-secret'],
                redirect_uris: args['redirect-uri'],
                grant_types: ['authorization_code'],
                response_types: ['code'],
                token_endpoint_auth_method: 'client_secret_post',
                id_token_signed_response_alg: 'RS256',
            },
        ],
        clientAuthMethods: ['client_secret_post'],
        routes,
        jwks: { keys },
        scopes: ['openid', 'profile', 'email'],
        claims: {
            openid: ['sub'],
            profile: ['name', 'given_name', 'family_name', 'picture', 'locale'],
            email: ['email', 'email_verified'],
        },
        // LinkedIn puts the profile claims in the id_token as well as in userinfo.
        conformIdTokenClaims: false,
        cookies: { keys: ['dchat-oidc-fixture-cookie-key'] },
        features: { devInteractions: { enabled: false } },
        interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
        pkce: { required: () => false },
        ttl: { AccessToken: 3600, AuthorizationCode: 600, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
        async findAccount(_ctx, sub) {
            const claims = accounts.get(sub);
            if (!claims) return undefined;
            return { accountId: sub, claims: async () => ({ ...claims }) };
        },
    });
    provider.use(async (ctx, next) => {
        if (ctx.path === routes.jwks) stats.jwks += 1;
        if (ctx.path === routes.token) stats.token += 1;
        if (ctx.path === routes.userinfo) stats.userinfo += 1;
        await next();
        if (ctx.path === routes.token && ctx.status === 200 && ctx.body?.id_token && idTokenMode !== 'normal') {
            ctx.body = { ...ctx.body, id_token: await alter(ctx.body.id_token, idTokenMode) };
        }
    });
    return provider;
}

// Re-signs an id_token the provider issued, changed as `mode` says.
async function alter(idToken, mode) {
    const [header, payload] = idToken.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
    const now = Math.floor(Date.now() / 1000);
    let key = keys[0];
    switch (mode) {
        case 'unknown_key':
            key = strayKey;
            break;
        case 'expired':
            payload.iat = now - 7200;
            payload.exp = now - 3600;
            break;
        case 'wrong_audience':
            payload.aud = 'some-other-client';
            break;
        case 'wrong_issuer':
            payload.iss = 'https://attacker.example/oauth';
            break;
        case 'wrong_nonce':
            payload.nonce = 'not-the-nonce-the-client-sent';
            break;
        default:
            throw new Error(`unknown id_token mode ${mode}`);
    }
    const privateKey = await importJWK(key, 'RS256');
    return new SignJWT(payload).setProtectedHeader({ ...header, alg: 'RS256', kid: key.kid }).sign(privateKey);
}

// The interaction "pages": approve login and consent at once, no HTML.
async function interact(provider, req, res, url) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session, grantId } = details;
    if (prompt.name === 'login') {
        const login = url.searchParams.get('login') ?? 'alice';
        const result = accounts.has(login)
            ? { login: { accountId: login } }
            : { error: 'access_denied', error_description: `no account ${login}` };
        return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    if (prompt.name === 'consent') {
        const grant = grantId
            ? await provider.Grant.find(grantId)
            : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        const { missingOIDCScope, missingOIDCClaims } = prompt.details;
        if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
        if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
        const result = { consent: { grantId: await grant.save() } };
        return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    }
    res.statusCode = 501;
    res.end(`prompt ${prompt.name} is not handled`);
}

async function readJson(req) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? JSON.parse(text) : {};
}

function send(res, status, body) {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
}

let issuer;
let provider;
let handler;

async function admin(req, res, url) {
    if (req.method === 'POST' && url.pathname === '/__test/accounts') {
        const claims = await readJson(req);
        if (typeof claims.sub !== 'string') return send(res, 400, { error: 'sub is required' });
        addAccount(claims);
        return send(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/__test/mode') {
        const { id_token: mode } = await readJson(req);
        const modes = ['normal', 'unknown_key', 'expired', 'wrong_audience', 'wrong_issuer', 'wrong_nonce'];
        if (!modes.includes(mode)) return send(res, 400, { error: `mode must be one of ${modes.join(', ')}` });
        idTokenMode = mode;
        return send(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/__test/rotate') {
        keys.unshift(await newKey());
        // oidc-provider reads its keys once, so a rotation is a new instance; grants, sessions and
        // codes live in the in-memory adapter, which every instance shares.
        provider = build(issuer);
        handler = provider.callback();
        return send(res, 200, { kid: keys[0].kid });
    }
    if (req.method === 'GET' && url.pathname === '/__test/stats') {
        return send(res, 200, stats);
    }
    return send(res, 404, { error: 'no such test route' });
}

const server = http.createServer((req, res) => {
    const url = new URL(req.url, issuer);
    const done = (err) => {
        if (err) {
            console.error(err);
            if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(err) });
        }
    };
    if (url.pathname.startsWith('/__test/')) {
        admin(req, res, url).catch(done);
        return;
    }
    if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(url.pathname)) {
        interact(provider, req, res, url).catch(done);
        return;
    }
    // Discovery lives under the issuer's path (`/oauth`), as on LinkedIn.
    if (url.pathname === '/oauth/.well-known/openid-configuration') {
        req.url = '/.well-known/openid-configuration';
    }
    handler(req, res);
});

server.listen(Number(args.port), '127.0.0.1', () => {
    const { port } = server.address();
    issuer = `http://127.0.0.1:${port}/oauth`;
    provider = build(issuer);
    handler = provider.callback();
    console.log(`listening on http://127.0.0.1:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => process.exit(0));
}
