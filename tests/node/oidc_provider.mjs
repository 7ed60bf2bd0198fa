// A real OpenID Provider (npm `oidc-provider`) for the identity-provider tests.
//
// Configured by the JSON in the OIDC_TEST_CONFIG environment variable:
//   { "port": 4000, "issuer": "http://127.0.0.1:4000",
//     "clients": [{ "client_id", "client_secret", "redirect_uris", "token_endpoint_auth_method" }],
//     "user": { "sub", "email", "email_verified", "name", "groups", "hd" },
//     "users": [ more users like "user" ] }
//
// `GET /test/sign-in-as?sub=…` makes the next logins those of another of the users.
//
// As the OAuth provider of a service (`"service": true`): every grant gets a refresh token,
// which rotates on use; access tokens live `accessTokenTtl` seconds; revocation is on; and
// `GET /test/stats` counts token requests by grant type, and revocations.
//
// Its interaction route signs the test user in and grants whatever was asked at once, so an
// HTTP client with a cookie jar can follow the whole authorization code flow. Setting
// `"deny": true` makes the route refuse instead, as a user pressing "Cancel" would.

import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG ?? '{}');
const users = [config.user, ...(config.users ?? [])];
let user = config.user;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

const stats = { authorization_code: 0, refresh_token: 0, revocations: 0 };
const serviceOptions = config.service
  ? {
      issueRefreshToken: async () => true,
      rotateRefreshToken: true,
      ttl: { AccessToken: config.accessTokenTtl ?? 3600, RefreshToken: 86400, Grant: 86400 },
      features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    }
  : {};

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: config.service ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    response_types: ['code'],
    ...client,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: ['test-cookie-key-not-secret'] },
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'hd'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ...serviceOptions,
  findAccount: async (ctx, sub) => {
    const found = users.find((candidate) => candidate.sub === sub);
    if (!found) return undefined;
    return { accountId: sub, claims: async () => ({ ...found }) };
  },
});

provider.on('grant.success', (ctx) => {
  const grantType = ctx.oidc.params.grant_type;
  if (grantType in stats) stats[grantType] += 1;
});
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token/revocation' && ctx.status === 200) stats.revocations += 1;
});

provider.use(async (ctx, next) => {
  if (ctx.path !== '/test/stats') return next();
  ctx.body = stats;
});

provider.use(async (ctx, next) => {
  if (ctx.path !== '/test/sign-in-as') return next();
  const found = users.find((candidate) => candidate.sub === ctx.query.sub);
  if (!found) {
    ctx.status = 404;
    return;
  }
  user = found;
  ctx.body = { signing_in_as: user.sub };
});

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/interaction/')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (config.deny) {
    result = { error: 'access_denied', error_description: 'The user refused access.' };
  } else if (prompt.name === 'login') {
    result = { login: { accountId: user.sub } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
  ctx.redirect(returnTo);
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
server.on('error', (error) => {
  console.error(`oidc-provider cannot listen on ${config.port}: ${error.message}`);
  process.exit(1);
});
