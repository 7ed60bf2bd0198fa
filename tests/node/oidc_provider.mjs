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

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
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
  findAccount: async (ctx, sub) => {
    const found = users.find((candidate) => candidate.sub === sub);
    if (!found) return undefined;
    return { accountId: sub, claims: async () => ({ ...found }) };
  },
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

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
