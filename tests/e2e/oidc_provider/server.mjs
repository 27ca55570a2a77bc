// A real OpenID provider (panva/oidc-provider, OpenID Certified) for the
// browser tests. Configuration comes from the environment the test sets:
//   PORT            port on 127.0.0.1
//   REDIRECT_URIS   comma list of our callback URLs
//   ACCOUNTS        JSON {accountId: {email, email_verified, name, given_name,
//                   family_name, roles}}; email_verified is true unless given,
//                   and a null leaves the claim out
// Its development login form accepts any password: the login is the account id.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'backoffice',
    client_secret: 'e2e-client-secret',
    redirect_uris: process.env.REDIRECT_URIS.split(','),
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
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['e2e-only-cookie-key'] },
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

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
