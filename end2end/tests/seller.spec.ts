import * as path from 'node:path';
import { Page, Browser } from '@playwright/test';
import { test, expect } from './fixtures';
import { open, snap, uniqueEmail, fillAddress } from './helpers';

async function register(page: Page, name: string, role: 'buyer' | 'seller') {
  await open(page, '/register');
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(uniqueEmail(role));
  await page.getByLabel('Password').fill('dashboard-test-pass');
  await page.locator(`input[name="role"][value="${role}"]`).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText(name);
}

async function newPage(browser: Browser) {
  return (await browser.newContext()).newPage();
}

/** The seller index follows the shards within about a second: reload until the row shows. */
async function waitForOrderRow(page: Page, orderId: string, status: string, waybill = '') {
  const row = page.locator(`[data-testid="seller-order"][data-order-id="${orderId}"]`);
  await expect(async () => {
    await open(page, '/seller/orders');
    await expect(row.getByTestId('seller-order-status')).toHaveText(status, { timeout: 500 });
    await expect(row).toContainText(waybill, { timeout: 500 });
  }).toPass({ timeout: 15_000 });
  return row;
}

async function saveWaybill(page: Page, carrier: string, tracking: string) {
  await page.getByTestId('carrier-input').fill(carrier);
  await page.getByTestId('tracking-input').fill(tracking);
  await page.getByTestId('save-waybill').click();
}

test('a seller lists a product, ships the order, corrects the waybill, and a stale tab is told what changed', async ({ browser }, testInfo) => {
  const seller = await newPage(browser);
  await register(seller, 'Kettle Works', 'seller');
  await expect(seller.getByTestId('dashboard-link')).toBeVisible();

  // A new product, from the dashboard.
  const title = `Copper Kettle ${Date.now()}`;
  await open(seller, '/seller/products/new');
  await seller.getByLabel('Title').fill(title);
  await seller.getByLabel('Description').fill('Hand-hammered, 1.5 litres.');
  await seller.getByLabel('Price (USD)').fill('12,5');
  await seller.getByTestId('create-product').click();
  await expect(seller.getByTestId('form-error')).toContainText('Price');
  await seller.getByLabel('Price (USD)').fill('45.00');
  await seller.getByLabel('Units in stock').fill('5');
  await seller.getByTestId('create-product').click();
  await expect(seller.getByTestId('product-created')).toBeVisible();
  await expect(seller).toHaveURL(/\/seller\/products\/\d+\?created=1$/);
  const productId = seller.url().match(/products\/(\d+)/)![1];
  await expect(seller.getByTestId('available')).toHaveText('5');

  // A buyer orders it and pays.
  const buyer = await newPage(browser);
  await register(buyer, 'Bo Buyer', 'buyer');
  await open(buyer, '/wallet');
  await buyer.getByTestId('top-up-amount').fill('100.00');
  await buyer.getByTestId('top-up').click();
  await expect(buyer.getByTestId('wallet-balance')).toHaveText('$100.00');
  await open(buyer, `/products/${productId}`);
  await buyer.getByTestId('buy-now').click();
  await expect(buyer.getByTestId('checkout-form')).toBeVisible();
  await fillAddress(buyer);
  await buyer.getByTestId('place-order').click();
  await expect(buyer.getByTestId('order-status')).toHaveText('Awaiting payment');
  const orderId = (await buyer.getByTestId('order-id').textContent())!.trim();
  await buyer.getByTestId('pay-order').click();
  await expect(buyer).toHaveURL(new RegExp(`/orders/${orderId}/paid$`));

  // The seller finds it on the dashboard (from the seller index) and ships it.
  const row = await waitForOrderRow(seller, orderId, 'Paid');
  await seller.getByTestId('status-tabs').getByRole('link', { name: /^Paid/ }).click();
  await expect(seller).toHaveURL(/status=paid/);
  await expect(row).toBeVisible();
  await snap(seller, testInfo, 'dashboard-orders');
  await row.getByRole('link', { name: orderId }).click();
  await expect(seller.getByTestId('order-status')).toHaveText('Paid');
  await expect(seller.getByTestId('ship-to')).toContainText('1 Tea Street');
  await saveWaybill(seller, 'DHL', '123');
  await expect(seller.getByTestId('waybill-saved')).toContainText('DHL 123');
  await expect(seller.getByTestId('order-status')).toHaveText('Shipped');
  await expect(seller.getByTestId('history-row')).toHaveCount(1);

  // The buyer sees it shipped, with the tracking number.
  await open(buyer, `/orders/${orderId}`);
  await expect(buyer.getByTestId('order-status')).toHaveText('Shipped');
  await expect(buyer.getByTestId('carrier')).toHaveText('DHL');
  await expect(buyer.getByTestId('tracking-number')).toHaveText('123');

  // Two tabs hold version 1. The first corrects it to 456; the second, still on
  // version 1, is refused and told what changed, and keeps what was typed.
  const stale = await seller.context().newPage();
  await open(stale, `/seller/orders/${orderId}`);
  await open(seller, `/seller/orders/${orderId}`);
  await saveWaybill(seller, 'DHL', '456');
  await expect(seller.getByTestId('waybill-saved')).toContainText('DHL 456');
  await expect(seller.getByTestId('history-row')).toHaveCount(2);
  await saveWaybill(stale, 'UPS', '789');
  const conflict = stale.getByTestId('waybill-conflict');
  await expect(conflict).toHaveText(/^This waybill was changed to 456 at \d\d:\d\d — review and submit again$/);
  await expect(stale.getByTestId('tracking-input')).toHaveValue('789');
  await expect(stale.getByTestId('carrier-input')).toHaveValue('UPS');
  await expect(stale.getByTestId('history-tracking')).toHaveText(['123', '456']);
  await snap(stale, testInfo, 'stale-waybill');
  await open(buyer, `/orders/${orderId}`);
  await expect(buyer.getByTestId('tracking-number')).toHaveText('456');
  // Having reviewed it, the seller submits again: accepted on top of 456.
  await stale.getByTestId('save-waybill').click();
  await expect(stale.getByTestId('waybill-saved')).toContainText('UPS 789');
  await expect(stale.getByTestId('history-tracking')).toHaveText(['123', '456', '789']);
  await waitForOrderRow(seller, orderId, 'Shipped', 'UPS 789');

  // Without script the same protection holds: the refused entry comes back in the form.
  const plain = await (await browser.newContext({ javaScriptEnabled: false, storageState: await seller.context().storageState() })).newPage();
  await plain.goto(`/seller/orders/${orderId}`);
  await open(seller, `/seller/orders/${orderId}`);
  await saveWaybill(seller, 'UPS', '790');
  await expect(seller.getByTestId('waybill-saved')).toContainText('UPS 790');
  await plain.getByTestId('tracking-input').fill('NOJS-1');
  await plain.getByTestId('save-waybill').click();
  await expect(plain.getByTestId('waybill-conflict')).toHaveText(/^This waybill was changed to 790 at \d\d:\d\d — review and submit again$/);
  await expect(plain.getByTestId('tracking-input')).toHaveValue('NOJS-1');
  await plain.getByTestId('save-waybill').click();
  await expect(plain).toHaveURL(new RegExp(`/seller/orders/${orderId}$`));
  await expect(plain.getByTestId('waybill-conflict')).toHaveCount(0);
  await expect(plain.getByTestId('history-tracking')).toHaveText(['123', '456', '789', '790', 'NOJS-1']);

  // An edit makes a new snapshot: the order still shows what was sold.
  await open(seller, `/seller/products/${productId}`);
  await seller.getByTestId('title-input').fill(`${title} (2027 edition)`);
  await seller.getByTestId('price-input').fill('49.00');
  await seller.getByTestId('save-product').click();
  await expect(seller.getByTestId('product-saved')).toBeVisible();
  await expect(seller.getByRole('heading', { level: 1 })).toHaveText(`${title} (2027 edition)`);
  await seller.getByTestId('restock-quantity').fill('10');
  await seller.getByTestId('restock').click();
  await expect(seller.getByTestId('available')).toHaveText('14');
  await open(seller, `/seller/orders/${orderId}`);
  await expect(seller.getByTestId('line-title')).toHaveText(title);
  await open(buyer, `/orders/${orderId}`);
  await expect(buyer.getByTestId('order')).toContainText(title);
  await expect(buyer.getByTestId('order')).not.toContainText('2027 edition');

  // A buyer cannot reach the dashboard; another seller cannot see this order.
  await open(buyer, '/seller/orders');
  await expect(buyer.getByTestId('sellers-only')).toBeVisible();
  const other = await newPage(browser);
  await register(other, 'Other Seller', 'seller');
  const response = await other.goto(`/seller/orders/${orderId}`);
  expect(response!.status()).toBe(404);
  await expect(other.getByTestId('not-found')).toBeVisible();
  expect((await other.goto(`/seller/products/${productId}`))!.status()).toBe(404);
});

test('a product edit made against an old version is refused with what changed', async ({ browser }) => {
  const seller = await newPage(browser);
  await register(seller, 'Lamp Makers', 'seller');
  await open(seller, '/seller/products/new');
  await seller.getByLabel('Title').fill('Desk Lamp');
  await seller.getByLabel('Price (USD)').fill('30');
  await seller.getByLabel('Units in stock').fill('3');
  await seller.getByTestId('create-product').click();
  await expect(seller.getByTestId('product-created')).toBeVisible();
  const url = seller.url().replace(/\?.*$/, '');
  const second = await seller.context().newPage();
  await open(second, url);
  await seller.getByTestId('title-input').fill('Desk Lamp, brass');
  await seller.getByTestId('save-product').click();
  await expect(seller.getByTestId('product-saved')).toBeVisible();
  await second.getByTestId('price-input').fill('35.00');
  await second.getByTestId('save-product').click();
  await expect(second.getByTestId('product-conflict')).toContainText('Desk Lamp, brass');
  await expect(second.getByTestId('price-input')).toHaveValue('35.00');
  await open(seller, '/seller/products');
  await expect(seller.getByTestId('seller-product')).toHaveCount(1);
  await expect(seller.getByTestId('seller-product')).toContainText('$30.00');
});

test('a seller adds a picture, and the shop shows it on the card once its sizes are made', async ({ browser }, testInfo) => {
  const seller = await newPage(browser);
  await register(seller, 'Picture Framers', 'seller');
  const title = `Oak frame ${Date.now()}`;
  await open(seller, '/seller/products/new');
  await seller.getByLabel('Title').fill(title);
  await seller.getByLabel('Price (USD)').fill('19.00');
  await seller.getByLabel('Units in stock').fill('4');
  await seller.getByTestId('category-choices').getByLabel('Home & living').check();
  await seller.getByTestId('create-product').click();
  await expect(seller.getByTestId('product-created')).toBeVisible();
  const productId = seller.url().match(/products\/(\d+)/)![1];

  // Not an image: refused, and the page says why.
  await seller.getByTestId('image-file').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
  await seller.getByTestId('upload-image').click();
  await expect(seller.getByTestId('image-error')).toContainText('not a JPEG, PNG or WebP');

  await seller.getByTestId('image-file').setInputFiles(path.join(__dirname, '..', 'fixtures', 'lamp.png'));
  await seller.getByTestId('image-alt').fill('An oak frame on a wall');
  await seller.getByTestId('upload-image').click();
  await expect(seller.getByTestId('image-added')).toBeVisible();
  await expect(seller.getByTestId('image-list').locator('li')).toHaveCount(1);

  // The card shows the card-sized picture once the job has made it.
  const shopper = await newPage(browser);
  await expect(async () => {
    await open(shopper, `/c/home`);
    const card = shopper.getByTestId('product-card').filter({ hasText: title });
    await expect(card.getByTestId('product-picture')).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 20_000 });
  const picture = shopper.getByTestId('product-card').filter({ hasText: title }).getByTestId('product-picture');
  await expect(picture).toHaveAttribute('loading', 'lazy');
  await expect(picture).toHaveAttribute('width', '96');
  await expect(picture).toHaveAttribute('alt', 'An oak frame on a wall');
  expect(await picture.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(96);
  await snap(shopper, testInfo, 'card-with-picture');
  await open(shopper, `/products/${productId}`);
  await expect(shopper.getByTestId('product-picture')).toBeVisible();
});
