import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { loadConfig } from '../../config';
import { createTokenVerifier } from '../../server/auth/passport';
import { TokenService } from '../../server/auth/tokens';
import { AppError } from '../../server/errors';

const SECRET = 's'.repeat(40);
const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, ACCESS_TOKEN_EXPIRE_MINUTES: '5' });
const tokens = new TokenService(config.auth, SECRET);
// Every token is verified on this one path (passport-jwt), for REST and both realtime handshakes.
const verifier = createTokenVerifier(config.auth, SECRET);

async function expectUnauthorized(token: unknown) {
  const error = await verifier.verify(token).then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).to.be.instanceOf(AppError).with.property('code', 'UNAUTHORIZED');
}

describe('TokenService and the token verifier', () => {
  it('issues access tokens whose claims carry the identity and the configured lifetime', async () => {
    const token = tokens.createAccessToken({ id: 'u-1', name: 'Ada' });
    expect(await verifier.verify(token)).to.deep.equal({ typ: 'access', sub: 'u-1', name: 'Ada' });
    const decoded = jwt.decode(token, { complete: true }) as jwt.Jwt & { payload: jwt.JwtPayload };
    expect(decoded.header.alg).to.equal('HS256');
    expect(decoded.payload.exp! - decoded.payload.iat!).to.equal(300);
  });

  it('issues creator tokens that last as long as their session (no expiry), guest tokens that expire', () => {
    expect(jwt.decode(tokens.createCreatorToken('abc'))).not.to.have.property('exp');
    expect((jwt.decode(tokens.createAccessToken({ id: 'u', name: 'U' })) as { exp?: number }).exp).to.be.a('number');
  });

  it('issues creator tokens scoped to one session', async () => {
    expect(await verifier.verify(tokens.createCreatorToken('abc'))).to.deep.include({ typ: 'creator', sid: 'abc' });
  });

  it('refuses expired tokens', async () => {
    await expectUnauthorized(jwt.sign({ typ: 'access', name: 'A', sub: 'u', exp: Math.floor(Date.now() / 1000) - 10 }, SECRET));
  });

  it('refuses a wrong signature', async () => {
    await expectUnauthorized(jwt.sign({ typ: 'access', name: 'A', sub: 'u' }, 'another-secret-another-secret-another'));
  });

  it('refuses alg: none', async () => {
    const unsigned = jwt.sign({ typ: 'access', name: 'A', sub: 'u' }, '', { algorithm: 'none' });
    await expectUnauthorized(unsigned);
  });

  it('refuses a token signed with another algorithm of the same secret', async () => {
    await expectUnauthorized(jwt.sign({ typ: 'access', name: 'A', sub: 'u' }, SECRET, { algorithm: 'HS512' }));
  });

  it('refuses tokens without the claims it needs, and non-strings', async () => {
    await expectUnauthorized(jwt.sign({ sub: 'u' }, SECRET));
    await expectUnauthorized(jwt.sign({ typ: 'creator', sub: 'u' }, SECRET));
    for (const bad of ['', 'a.b.c', 42, null, {}, 'x'.repeat(5000), 'a b']) await expectUnauthorized(bad);
  });
});
