import { defineConfig } from '@playwright/test';

// The server under test: the binary `cargo leptos build` produced, started from the
// repository root (it serves target/site) on a fresh, demo-seeded SQLite folder.
const port = Number(process.env.E2E_PORT ?? 3100);
const profile = process.env.E2E_PROFILE ?? 'debug';
const dataDir = process.env.E2E_DATA_DIR ?? `/tmp/ninefold-e2e-${process.pid}`;
// Workers inherit these, so a test can run `server <command>` on the same databases.
process.env.E2E_DATA_DIR = dataDir;
process.env.E2E_PROFILE = profile;

// With E2E_REPLICA_CONFIG (scripts/test.sh sets it), a second server runs on
// PostgreSQL with a streaming replica that applies WAL 2 s late, and the
// read-your-writes tests (replica.spec.ts) run against it.
const replicaConfig = process.env.E2E_REPLICA_CONFIG;
const replicaPort = port + 1;
const chromium = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
};

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: chromium,
  },
  projects: [
    { name: 'sqlite', testIgnore: /replica\.spec\.ts/ },
    ...(replicaConfig ? [{ name: 'replica', testMatch: /replica\.spec\.ts/, use: { baseURL: `http://127.0.0.1:${replicaPort}`, launchOptions: chromium } }] : []),
  ],
  webServer: [{
    command: `rm -rf ${dataDir} && ./target/${profile}/server`,
    cwd: '..',
    url: `http://127.0.0.1:${port}/healthz`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe' as const,
    stderr: 'pipe' as const,
    env: { NINEFOLD_ADDR: `127.0.0.1:${port}`, NINEFOLD_DATA_DIR: dataDir, RUST_LOG: 'warn' },
  },
  ...(replicaConfig ? [{
    command: `./target/${profile}/server`,
    cwd: '..',
    url: `http://127.0.0.1:${replicaPort}/healthz`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe' as const,
    stderr: 'pipe' as const,
    env: { NINEFOLD_ADDR: `127.0.0.1:${replicaPort}`, NINEFOLD_CONFIG: replicaConfig, NINEFOLD_DATA_DIR: `${dataDir}-replica`, RUST_LOG: 'warn' },
  }] : []),
  ],
});
