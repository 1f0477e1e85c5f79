// A certified OpenID provider for Berth's OIDC login tests: panva's node-oidc-provider (npm
// `oidc-provider`, OpenID Certified), configured from a JSON file. Its own development login and
// consent pages stand in for a provider's sign-in (any password; the login is the account id).
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: {"issuer": "http://127.0.0.1:PORT", "port": PORT,
//   "clients": [{"client_id": …, "client_secret": …, "redirect_uris": […]}],
//   "users": {"alice": {"email": …, "email_verified": true, "groups": […]}, …},
//   "short_lived": {"erin": SECONDS},  (those accounts' access tokens live that long)
//   "short_lived_codes": {"walt": SECONDS}}  (and those accounts' first authorization code)
// Each line it prints on stdout is one JSON event: the token endpoint's grants and refusals,
// userinfo's answers and refusals (never a secret or token), and {"event": "listening"}.
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const say = (event, fields = {}) => console.log(JSON.stringify({ event, time: Date.now() / 1000, ...fields }));

const shortened = new Set();
const firstCodeTTL = (account) => {
  const seconds = config.short_lived_codes?.[account];
  if (seconds === undefined || shortened.has(account)) return 60;
  shortened.add(account); // only the first: the next login of that account must work
  return seconds;
};

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    ...client,
  })),
  async findAccount(ctx, id) {
    const user = config.users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, email: `${id}@example.org`, email_verified: true, ...user };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    // The groups ride with the profile scope (what Berth asks for): no extra scope to configure.
    profile: ['name', 'preferred_username', 'groups'],
  },
  conformIdTokenClaims: false, // userinfo and the ID token both carry the scopes' claims
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  // Expired tokens are refused 1 s after their end, not the default 15 s (the expiry test waits).
  clockTolerance: 1,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  ttl: {
    // Per account, so that one test user's tokens can expire within a test.
    AccessToken: (ctx, token) => config.short_lived?.[token.accountId] ?? 3600,
    IdToken: 3600,
    AuthorizationCode: (ctx, code) => firstCodeTTL(code.accountId),
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
});

provider.on('grant.success', (ctx) => say('token', { outcome: 'ok', client: ctx.oidc.client?.clientId }));
provider.on('grant.error', (ctx, error) => say('token', { outcome: error.error, client: ctx.oidc.client?.clientId }));
provider.on('userinfo.error', (ctx, error) => say('userinfo', { outcome: error.error }));
provider.on('server_error', (ctx, error) => say('server_error', { message: String(error) }));
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/me' && ctx.status === 200) say('userinfo', { outcome: 'ok', sub: ctx.oidc?.accessToken?.accountId });
});

provider.listen(config.port, '127.0.0.1', () => say('listening', { issuer: config.issuer }));
