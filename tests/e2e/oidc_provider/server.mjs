// A real OpenID provider (panva/oidc-provider, OpenID Certified) for the
// browser tests. Configuration comes from the environment the test sets:
//   PORT            port on 127.0.0.1
//   REDIRECT_URIS   comma list of our callback URLs
//   POST_LOGOUT_REDIRECT_URIS  comma list of where RP-initiated logout may
//                   send the browser back to (optional)
//   BACKCHANNEL_LOGOUT_URI     our back-channel logout endpoint (optional);
//                   logout tokens then carry the session id (sid)
//   ACCOUNTS        JSON {accountId: {email, email_verified, name, given_name,
//                   family_name, roles}}; email_verified is true unless given,
//                   and a null leaves the claim out
// Its development login form accepts any password: the login is the account id.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
const list = (name) => (process.env[name] || '').split(',').filter(Boolean);
const backchannel = process.env.BACKCHANNEL_LOGOUT_URI
  ? {
    backchannel_logout_uri: process.env.BACKCHANNEL_LOGOUT_URI,
    backchannel_logout_session_required: true,
  }
  : {};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'backoffice',
    client_secret: 'e2e-client-secret',
    redirect_uris: process.env.REDIRECT_URIS.split(','),
    post_logout_redirect_uris: list('POST_LOGOUT_REDIRECT_URIS'),
    ...backchannel,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'roles'],
  },
  // Put the scope's claims in the ID token itself: one request (token) per login.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  cookies: { keys: ['e2e-only-cookie-key'] },
  // Its outgoing calls (back-channel logout) refuse loopback addresses
  // (SSRF protection); here the relying party is on loopback. Tests only.
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
  findAccount: async (ctx, id) => ({
    accountId: id,
    // A null in ACCOUNTS means the provider does not send that claim at all.
    claims: async () => Object.fromEntries(
      Object.entries({ sub: id, email_verified: true, ...(accounts[id] || {}) })
        .filter(([, value]) => value !== null),
    ),
  }),
});
provider.proxy = false;
provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  console.log(`backchannel ok ${accountId} ${sid ? 'with sid' : 'without sid'}`);
});
provider.on('backchannel.error', (ctx, err) => console.log(`backchannel error ${err.message} ${err.cause?.code || ''}`));

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
