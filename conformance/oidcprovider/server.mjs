// oidc-provider on loopback, for bearer's conformance tests.
//
// The Go test starts it as `node server.mjs` with the settings below in its
// environment, reads one JSON line {"ready":true,"port":N} on stdout once it
// listens on 127.0.0.1:N, and then sends commands on stdin, one a line, each
// answered by one JSON line on stdout. The server exits when stdin closes, so
// it never outlives the test that started it.
//
//   OP_ISSUER         the issuer URL (the Go test's front server, which
//                     counts token requests and forwards everything here)
//   OP_ACCESS_TTL     access token lifetime in seconds (client credentials
//                     tokens too)
//   OP_REDIRECT_URI   the public client's redirect URI
//
// Commands:
//   expire-access [S] every access token issued so far expired S seconds
//                     ago (60 when not given)
//
// The pinned version is 8.8.1 (package-lock.json): the last oidc-provider
// whose supported runtimes include Node.js 18, Debian 12's, as well as 20;
// 9.x wants 22. Option names are that version's (features.dPoP, not dpop).

import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import Provider from 'oidc-provider';

// The clients, as the Go side knows them (oidcprovider_test.go).
const PUBLIC_CLIENT = 'conformance-public';
const SERVICE_CLIENT = 'conformance-service';
const SERVICE_SECRET = 'conformance-service-secret';

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set`);
  }
  return v;
}

const issuer = env('OP_ISSUER');
const accessTTL = Number.parseInt(env('OP_ACCESS_TTL'), 10);
const redirectURI = env('OP_REDIRECT_URI');
if (!(accessTTL > 0)) {
  throw new Error('OP_ACCESS_TTL must be a positive number of seconds');
}

const now = () => Math.floor(Date.now() / 1000);

// Storage is the provider's adapter: a Map per process, as the built-in
// memory adapter is, but without its LRU bound of 1000 entries (a soak test
// with DPoP stores one replay-detection entry per proof, and the LRU would
// evict grants and tokens), and with a hook to expire access tokens.
const storage = new Map(); // key → { payload, expiresAt (epoch seconds) }
const grants = new Map(); // grantId → [key]

class Adapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (payload.grantId) {
      const keys = grants.get(payload.grantId) ?? [];
      keys.push(key);
      grants.set(payload.grantId, keys);
    }
    if (this.model === 'Session') {
      storage.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt: now() + expiresIn });
    }
    if (payload.userCode) {
      storage.set(`userCode:${payload.userCode}`, { payload: id, expiresAt: now() + expiresIn });
    }
    storage.set(key, { payload, expiresAt: expiresIn ? now() + expiresIn : Infinity });
  }

  static get(key) {
    const entry = storage.get(key);
    if (!entry) {
      return undefined;
    }
    if (entry.expiresAt <= now()) {
      storage.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async find(id) {
    return Adapter.get(this.key(id));
  }

  async findByUid(uid) {
    const id = Adapter.get(`sessionUid:${uid}`);
    return id && this.find(id);
  }

  async findByUserCode(userCode) {
    const id = Adapter.get(`userCode:${userCode}`);
    return id && this.find(id);
  }

  async consume(id) {
    const payload = Adapter.get(this.key(id));
    if (payload) {
      payload.consumed = now();
    }
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) {
      storage.delete(key);
    }
    grants.delete(grantId);
  }
}

// expireAccess ends the life of every access token issued so far, in the
// provider's own terms: its `exp` is past, so userinfo and introspection
// refuse it, as they would a token that expired on the clock. Past by more
// than clockTolerance (15 s by default), which userinfo grants an expired
// token and introspection does not.
function expireAccess(ago = 60) {
  let n = 0;
  for (const [key, entry] of storage) {
    if (key.startsWith('AccessToken:') || key.startsWith('ClientCredentials:')) {
      entry.payload.exp = now() - ago;
      n += 1;
    }
  }
  return n;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

const provider = new Provider(issuer, {
  adapter: Adapter,
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'conformance', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  clients: [
    {
      // The public client: no secret, PKCE (the server's default requires
      // it of every client, S256 only), a refresh token for offline_access
      // (asked for with prompt=consent, as OpenID Connect Core §11
      // requires). A code exchange with a DPoP proof binds the refresh
      // token to the proof's key.
      client_id: PUBLIC_CLIENT,
      token_endpoint_auth_method: 'none',
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [redirectURI],
    },
    {
      // The confidential client: client credentials, and the resource
      // server's credentials for introspection.
      client_id: SERVICE_CLIENT,
      client_secret: SERVICE_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  // Any name and password log in (the login page is devInteractions').
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  // Rotate on every refresh. A refresh token used a second time is refused
  // with invalid_grant and its whole grant is revoked (reuse detection).
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTTL,
    ClientCredentials: accessTTL,
    RefreshToken: 24 * 60 * 60,
    Grant: 24 * 60 * 60,
    Session: 24 * 60 * 60,
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    // DPoP (RFC 9449) with server nonces required wherever a proof is
    // checked: the token endpoint and userinfo.
    dPoP: {
      enabled: true,
      nonceSecret: randomBytes(32),
      requireNonce: () => true,
    },
  },
});

const server = createServer(provider.callback());
server.listen(0, '127.0.0.1', () => {
  reply({ ready: true, port: server.address().port });
});

function reply(msg) {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

const commands = {
  'expire-access': (ago) => ({ expired: expireAccess(ago === undefined ? undefined : Number(ago)) }),
};

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [name, ...args] = line.trim().split(/\s+/);
  const cmd = commands[name];
  reply(cmd ? { done: name, ...cmd(...args) } : { error: `unknown command ${JSON.stringify(line)}` });
});
lines.on('close', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
