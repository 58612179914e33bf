import { APIRequestContext } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { test, expect } from './fixtures';
import { open, snap, accountViaApi, signInAs, ApiAccount } from './helpers';

async function call(request: APIRequestContext, method: 'post' | 'put', url: string, who: ApiAccount, data?: object, headers: Record<string, string> = {}) {
  const reply = await request[method](url, { data, headers: { Authorization: `Bearer ${who.token}`, ...headers } });
  expect(reply.ok(), `${url}: ${reply.status()} ${await reply.text()}`).toBeTruthy();
  return reply.json();
}

/** `server archive` on the test server's databases, with the hot window at zero: every final order moves. */
function archiveEverythingFinal() {
  const root = path.resolve(__dirname, '..', '..');
  const output = execFileSync(path.join(root, 'target', process.env.E2E_PROFILE ?? 'debug', 'server'), ['archive'], {
    cwd: root,
    env: { ...process.env, NINEFOLD_DATA_DIR: process.env.E2E_DATA_DIR, NINEFOLD_ARCHIVE_AFTER_SECS: '0', RUST_LOG: 'warn' },
  }).toString();
  return JSON.parse(output);
}

test('a completed order, archived, is in the order history with its label, and the seller still lists it', async ({ browser, request, baseURL }, testInfo) => {
  const seller = await accountViaApi(request, baseURL!, 'seller', 'Archive Pottery');
  const buyer = await accountViaApi(request, baseURL!, 'buyer', 'Archie Buyer');
  const product = await call(request, 'post', '/api/v1/seller/products', seller, { title: `Stoneware jug ${Date.now()}`, price_cents: 2400, stock: 3 });
  await call(request, 'post', '/api/v1/wallet/top-up', buyer, { amount_cents: 10_000 }, { 'Idempotency-Key': `archive-${Date.now()}` });
  const checkout = await call(request, 'post', '/api/v1/checkout', buyer, { lines: [{ product_id: product.id, quantity: 1 }] });
  const address = { name: 'Archie', line1: '3 Kiln Road', city: 'Stoke', postal_code: 'ST1', country: 'GB' };
  const order = await call(request, 'post', '/api/v1/orders', buyer, { order_id: checkout.order_id, checkout_token: checkout.checkout_token, lines: checkout.lines, shipping_address: address });
  await call(request, 'post', `/api/v1/orders/${order.id}/pay`, buyer);
  await call(request, 'put', `/api/v1/seller/orders/${order.id}/shipping`, seller, { carrier: 'Royal Mail', tracking_number: 'RM123', expected_version: 0 });
  const completed = await call(request, 'post', `/api/v1/orders/${order.id}/confirm-receipt`, buyer);
  expect(completed.status).toBe('completed');

  const report = archiveEverythingFinal();
  expect(report.shards.reduce((sum: number, s: { moved: number }) => sum + s.moved, 0)).toBeGreaterThanOrEqual(1);

  const page = await (await browser.newContext()).newPage();
  await signInAs(page, buyer);
  await open(page, '/orders');
  await expect(page.getByRole('heading', { name: 'My orders' })).toBeVisible();
  await expect(page.locator(`[data-testid="my-order"][data-order-id="${order.id}"]`)).toHaveCount(0);
  await page.getByTestId('order-history-link').click();
  await expect(page).toHaveURL(/\/orders\/history$/);
  await expect(page.getByRole('heading', { name: 'Order history' })).toBeVisible();
  const row = page.locator(`[data-testid="my-order"][data-order-id="${order.id}"]`);
  await expect(row).toContainText('Completed');
  await snap(page, testInfo, 'order-history');
  await row.click();
  await expect(page).toHaveURL(new RegExp(`/orders/${order.id}$`));
  await expect(page.getByTestId('order-status')).toHaveText('Completed');
  await expect(page.getByTestId('order-archived')).toHaveText('Archived');
  await expect(page.getByTestId('tracking-number')).toHaveText('RM123');
  await expect(page.getByTestId('cancel-order')).toHaveCount(0);
  // Opened by its id directly, too.
  await open(page, `/orders/${order.id}`);
  await expect(page.getByTestId('order-archived')).toBeVisible();
  await snap(page, testInfo, 'archived-order');

  const dashboard = await (await browser.newContext()).newPage();
  await signInAs(dashboard, seller);
  await open(dashboard, '/seller/orders');
  const sellerRow = dashboard.locator(`[data-testid="seller-order"][data-order-id="${order.id}"]`);
  await expect(sellerRow.getByTestId('seller-order-archived')).toHaveText('Archived');
  await expect(sellerRow.getByTestId('seller-order-status')).toContainText('Completed');
  await sellerRow.getByRole('link', { name: order.id }).click();
  await expect(dashboard.getByTestId('order-archived')).toBeVisible();
  await expect(dashboard.getByTestId('not-shippable')).toContainText('archived');
});
