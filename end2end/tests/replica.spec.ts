import { APIRequestContext } from '@playwright/test';
import { test, expect } from './fixtures';
import { open, snap, fillAddress, accountViaApi, signInAs } from './helpers';

// Runs against the second server (playwright.config.ts, project "replica"): on
// PostgreSQL, every display read allowed to use a streaming replica that applies
// WAL two seconds late. A buyer who pays must still see the order paid at once.

async function counter(request: APIRequestContext, name: string, labels: string[]) {
  const text = await (await request.get('/metrics')).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && labels.every((l) => line.includes(l)))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

test('a buyer who pays sees the order paid at once, twenty times in a row, with the replica 2 s behind', async ({ page, request, baseURL }, testInfo) => {
  test.setTimeout(180_000);
  const seller = await accountViaApi(request, baseURL!, 'seller', 'Replica Lamps');
  const buyer = await accountViaApi(request, baseURL!, 'buyer', 'Rita Reader');
  const product = await (await request.post('/api/v1/seller/products', { data: { title: `Desk lamp ${Date.now()}`, price_cents: 1500, stock: 100 }, headers: { Authorization: `Bearer ${seller.token}` } })).json();
  const topUp = await request.post('/api/v1/wallet/top-up', { data: { amount_cents: 100_000 }, headers: { Authorization: `Bearer ${buyer.token}`, 'Idempotency-Key': `replica-${Date.now()}` } });
  expect(topUp.ok()).toBeTruthy();
  const fallbacks = await counter(request, 'ninefold_replica_fallbacks_total', ['reason="fence"']);

  await signInAs(page, buyer);
  // The product reaches the replica within its lag: the buyer did not write it.
  await expect(async () => {
    await open(page, `/products/${product.id}`);
    await expect(page.getByTestId('buy-now')).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 20_000 });

  for (let round = 0; round < 20; round++) {
    await open(page, `/products/${product.id}`);
    await page.getByTestId('buy-now').click();
    await expect(page.getByTestId('checkout-form')).toBeVisible();
    await fillAddress(page);
    await page.getByTestId('place-order').click();
    await expect(page.getByTestId('order-status'), `round ${round}: the new order`).toHaveText('Awaiting payment', { timeout: 1_500 });
    const orderId = (await page.getByTestId('order-id').textContent())!.trim();
    await page.getByTestId('pay-order').click();
    await expect(page).toHaveURL(new RegExp(`/orders/${orderId}/paid$`));
    // At once, not eventually: a short timeout, far below the replica's 2 s.
    await page.goto(`/orders/${orderId}`);
    await expect(page.getByTestId('order-status'), `round ${round}: the order page trails the payment`).toHaveText('Paid', { timeout: 1_500 });
    if (round === 0) await snap(page, testInfo, 'paid-order-read-at-once');
  }
  await open(page, '/orders');
  await expect(page.getByTestId('my-order').first()).toContainText('Paid');
  expect(await counter(request, 'ninefold_replica_fallbacks_total', ['reason="fence"'])).toBeGreaterThan(fallbacks);
});
