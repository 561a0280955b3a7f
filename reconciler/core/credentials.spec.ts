import { describe, expect, it } from 'vitest';
import { credentialReason, describePlain, plainCredentials, shownPlain } from './credentials.js';
import { fingerprinter } from './secrets.js';

describe('reconciler/core/credentials', () => {
  it.each([
    // By name (case-insensitive), whatever the value.
    ['STRIPE_API_KEY', 'abc', 'its name STRIPE_API_KEY says so'],
    ['api_key', 'abc', 'its name api_key says so'],
    ['GITHUB_TOKEN', 'abc', 'its name'],
    ['TOKEN', 'abc', 'its name'],
    ['SESSION_SECRET', 'abc', 'its name'],
    ['DB_PASSWORD', 'hunter2', 'its name'],
    ['PASSWORD_SALT', 'x', 'its name'],
    ['mysql_passwd', 'x', 'its name'],
    ['SMTP_PASS', 'x', 'its name'],
    ['GOOGLE_CREDENTIALS', '{}', 'its name'],
    ['DB_PASSWORD', 12345678, 'its name'],
    // By format, whatever the name.
    ['PAYMENTS', 'sk_live_4f9a2c7e1b3d5f60', 'a Stripe secret key'],
    ['PAYMENTS', 'sk_test_4f9a2c7e1b3d5f60', 'a Stripe secret key'],
    ['PAYMENTS', 'rk_live_4f9a2c7e1b3d5f60', 'a Stripe secret key'],
    ['GH', 'ghp_0123456789abcdefghijklmnopqrstuvwxyz', 'a GitHub token'],
    ['GH', 'gho_0123456789abcdefghijklmnopqrstuvwxyz', 'a GitHub token'],
    ['GH', 'ghs_0123456789abcdefghijklmnopqrstuvwxyz', 'a GitHub token'],
    ['GH', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnop', 'a GitHub token'],
    ['AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE', 'an AWS access key'],
    ['SLACK', 'xoxb-123456789012-abcdefghij', 'a Slack token'],
    ['SLACK', 'xoxp-123456789012-abcdefghij', 'a Slack token'],
    ['CERT', '-----BEGIN RSA PRIVATE KEY-----MIIEowIBAAKCAQEA', 'a PEM private key'],
    ['CERT', '-----BEGIN PRIVATE KEY-----', 'a PEM private key'],
    ['SESSION', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', 'a JSON Web Token'],
    ['MAPS', 'AIzaSyA1234567890abcdefghijklmnopqrstuv', 'a Google API key'],
    ['DATABASE_URL', 'postgres://app:s3cret@db.internal:5432/app', 'a URL with a password'],
    ['SENTRY_DSN', 'https://key:secret@sentry.example.com/1', 'a URL with a password'],
    ['REDIS_URL', 'redis://:s3cret@127.0.0.1:6379/0', 'a URL with a password'],
    ['PG', 'host=db user=app password=s3cret dbname=app', 'a connection string with a password'],
  ])('%s = %j looks like a credential: %s', (key, value, why) => {
    expect(credentialReason(key, value)).toContain(why);
  });

  it.each([
    ['NODE_ENV', 'production'],
    ['PORT', 8080],
    ['DEBUG', true],
    ['DB_PASSWORD', ''],
    ['DB_PASSWORD_FILE', '/etc/hostkit/secrets/app/db'],
    ['TOKEN_PATH', '/run/token'],
    ['STRIPE_PUBLISHABLE_KEY', 'pk_live_4f9a2c7e1b3d5f60'],
    ['VAPID_PUBLIC_KEY', 'BEl62iUYgUivxIkv69yViEuiBIa'],
    ['KEYBOARD', 'us'],
    ['MONKEY', 'banana'],
    ['DATABASE_URL', 'postgres://app@db.internal:5432/app'],
    ['HOMEPAGE', 'https://example.com/a:b@c'],
    ['GREETING', 'hello, eyJ world'],
  ])('%s = %j is not one', (key, value) => {
    expect(credentialReason(key, value)).toBeUndefined();
  });

  it('shows a plain credential by its length and a keyed fingerprint, anything else not at all', () => {
    const fingerprint = fingerprinter(Buffer.alloc(32, 1));
    expect(describePlain('hunter2')).toBe('(plain value, 7 characters, redacted)');
    expect(shownPlain('DB_PASSWORD', 'hunter2', fingerprint)).toBe(`(plain value, 7 characters, redacted) ${fingerprint('hunter2')}`);
    expect(shownPlain('NODE_ENV', 'production', fingerprint)).toBeUndefined();
    expect(plainCredentials({ NODE_ENV: 'production', API_KEY: 'k-123', PORT: 80 })).toEqual(['k-123']);
  });

  it('a value of 4,096 characters built to backtrack is judged at once', () => {
    const started = performance.now();
    for (const value of ['-----BEGIN ' + 'A '.repeat(2040), 'x://' + ':'.repeat(4090), 'eyJ' + 'a'.repeat(4090) + '.', ' password' + ' '.repeat(4080)])
      credentialReason('X', value);
    expect(performance.now() - started).toBeLessThan(50);
  });
});
