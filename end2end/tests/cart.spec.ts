import { Page, APIRequestContext } from '@playwright/test';
import { test, expect } from './fixtures';
import { open, snap, uniqueEmail, fillAddress } from './helpers';

type Account = { email: string; password: string; name: string };

const STORAGE_KEY = 'ninefold.cart';

async function registerViaApi(request: APIRequestContext, prefix: string): Promise<Account> {
  const account = { email: uniqueEmail(prefix), password: 'cart-test-pass', name: `Cart ${prefix}` };
  const reply = await request.post('/api/v1/auth/register', { data: { ...account, role: 'buyer' } });
  expect(reply.status()).toBe(201);
  return account;
}

async function apiCart(request: APIRequestContext, account: Account): Promise<Map<number, number>> {
  const login = await request.post('/api/v1/auth/login', { data: { email: account.email, password: account.password } });
  const { token } = await login.json();
  const cart = await (await request.get('/api/v1/cart', { headers: { Authorization: `Bearer ${token}` } })).json();
  return new Map(cart.lines.map((l: { product_id: number; quantity: number }) => [l.product_id, l.quantity]));
}

/** The product page's path, found from the shop's front page as a shopper would. */
async function productPath(page: Page, title: string): Promise<string> {
  await page.goto('/');
  const href = await page.getByTestId('product-card').filter({ hasText: title }).getAttribute('href');
  expect(href).toMatch(/^\/products\/\d+$/);
  return href!;
}

async function addToCart(page: Page, title: string, quantity: number) {
  await open(page, await productPath(page, title));
  await page.getByTestId('add-quantity').fill(String(quantity));
  await page.getByTestId('add-to-cart').click();
  await expect(page.getByTestId('added-to-cart')).toContainText('Added to your cart');
}

async function signIn(page: Page, account: Account, next = '/') {
  await open(page, `/login?next=${next}`);
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText(account.name);
}

async function cartQuantities(page: Page): Promise<Record<string, string>> {
  const rows = page.getByTestId('cart-line');
  const result: Record<string, string> = {};
  for (const row of await rows.all()) {
    const title = (await row.locator('a').first().textContent())!.trim();
    result[title] = (await row.getAttribute('data-quantity'))!;
  }
  return result;
}

function failOnPageErrors(page: Page) {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

test('a guest cart survives a reload and is merged at sign-in, with a notice', async ({ page, request }, testInfo) => {
  const errors = failOnPageErrors(page);
  const account = await registerViaApi(request, 'merge');
  await addToCart(page, 'Merino Wool Socks', 2);
  await addToCart(page, 'Washi Tape Set', 1);
  await expect(page.getByTestId('cart-count')).toHaveText('3');

  await page.reload();
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect(page.getByTestId('cart-count')).toHaveText('3');
  await open(page, '/cart');
  await expect(page.getByTestId('cart-line')).toHaveCount(2);
  await expect(page.getByTestId('sign-in-to-check-out').first()).toBeVisible();
  await snap(page, testInfo, 'guest-cart');

  await signIn(page, account);
  await expect(page.getByTestId('cart-notice')).toContainText('2 items from before you signed in were added to your cart');
  await snap(page, testInfo, 'merge-notice');
  await expect.poll(() => page.evaluate((key) => localStorage.getItem(key), STORAGE_KEY)).toBeNull();

  await open(page, '/cart');
  await expect(page.getByTestId('cart-line')).toHaveCount(2);
  expect(await cartQuantities(page)).toEqual({ 'Merino Wool Socks': '2', 'Washi Tape Set': '1' });
  await expect(page.getByTestId('checkout-group')).toHaveCount(2);
  await snap(page, testInfo, 'account-cart');

  // Each seller's group checks out on its own.
  await page.getByTestId('checkout-group').filter({ hasText: 'Paper & Ink' }).click();
  await expect(page).toHaveURL(/\/checkout\/\d{19}$/);
  await expect(page.getByTestId('checkout-total')).toHaveText('$8.99');
  expect(errors).toEqual([]);
});

test('signing in from two tabs at once doubles no quantity', async ({ browser, request }, testInfo) => {
  const account = await registerViaApi(request, 'tabs');
  const context = await browser.newContext();
  const a = await context.newPage();
  await addToCart(a, 'Merino Wool Socks', 2);
  await addToCart(a, 'Bottled Ink, Midnight Blue', 3);
  const b = await context.newPage();
  await open(a, '/login');
  await open(b, '/login');
  for (const tab of [a, b]) {
    await tab.getByLabel('Email').fill(account.email);
    await tab.getByLabel('Password').fill(account.password);
  }
  // Each tab sends its merge once signed in: wait for both answers, so the check
  // below sees what both merges did.
  const merged = [a, b].map((tab) => tab.waitForResponse((r) => r.url().includes('/fn/merge_browser_cart') && r.ok()));
  await Promise.all([a, b].map((tab) => tab.getByRole('button', { name: 'Sign in' }).click()));
  for (const tab of [a, b]) {
    await expect(tab.getByTestId('signed-in-as')).toHaveText(account.name);
  }
  await Promise.all(merged);
  await expect.poll(() => a.evaluate((key) => localStorage.getItem(key), STORAGE_KEY)).toBeNull();
  const quantities = [...(await apiCart(request, account)).values()].sort();
  expect(quantities).toEqual([2, 3]);
  await open(b, '/cart');
  expect(await cartQuantities(b)).toEqual({ 'Merino Wool Socks': '2', 'Bottled Ink, Midnight Blue': '3' });
  await snap(b, testInfo, 'second-tab-cart');
  await context.close();
});

test('without JavaScript, a form adds to a server-side guest cart that is merged at sign-in', async ({ browser, request }, testInfo) => {
  const account = await registerViaApi(request, 'nojs');
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(await productPath(page, 'Insulated Bottle, 750 ml'));
  await page.getByTestId('add-quantity').fill('2');
  await page.getByTestId('add-to-cart').click();
  await expect(page).toHaveURL(/\/products\/\d+\??$/);
  await expect(page.getByTestId('cart-count')).toHaveText('2');

  await page.goto('/cart');
  expect(await cartQuantities(page)).toEqual({ 'Insulated Bottle, 750 ml': '2' });
  await snap(page, testInfo, 'no-script-guest-cart');

  await page.goto('/login?next=/cart');
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/cart\?cart_merged=1/);
  await expect(page.getByTestId('cart-notice')).toContainText('1 item from before you signed in was added to your cart');
  await expect(page.getByTestId('signed-in-as')).toHaveText(account.name);
  expect(await cartQuantities(page)).toEqual({ 'Insulated Bottle, 750 ml': '2' });
  await snap(page, testInfo, 'no-script-merged');
  expect([...(await apiCart(request, account)).values()]).toEqual([2]);
  await context.close();
});

test('a corrupted stored cart is recovered, never a crash', async ({ page }, testInfo) => {
  const errors = failOnPageErrors(page);
  await addToCart(page, 'Merino Wool Socks', 1);
  const socks = Number((await productPath(page, 'Merino Wool Socks')).split('/').pop());

  // Not JSON at all: emptied, and the shopper is told.
  await page.evaluate((key) => localStorage.setItem(key, '{"v":1, "lines": [oops'), STORAGE_KEY);
  await open(page, '/cart');
  await expect(page.getByTestId('cart-notice')).toContainText('could not be read');
  await expect(page.getByTestId('cart-empty')).toBeVisible();
  await expect(page.getByTestId('cart-count')).toHaveText('0');

  // An older shape with a good line, a malformed one and a deleted product: the good one stays.
  const stored = JSON.stringify([
    { product_id: socks, quantity: 2 },
    { product_id: 'not-an-id', quantity: 1 },
    { product_id: 999999, quantity: 1 },
  ]);
  await page.evaluate(([key, value]) => localStorage.setItem(key, value), [STORAGE_KEY, stored]);
  await open(page, '/cart');
  await expect(page.getByTestId('cart-line')).toHaveCount(1);
  expect(await cartQuantities(page)).toEqual({ 'Merino Wool Socks': '2' });
  await expect(page.getByTestId('cart-notice').filter({ hasText: 'could not be restored' })).toBeVisible();
  await expect(page.getByTestId('cart-notice').filter({ hasText: 'no longer sold' })).toBeVisible();
  await expect(page.getByTestId('cart-count')).toHaveText('2');
  await snap(page, testInfo, 'recovered-cart');

  // Changing and removing lines works on what was recovered.
  await page.getByTestId('line-quantity').fill('4');
  await page.getByTestId('line-quantity').press('Tab');
  await expect(page.getByTestId('cart-count')).toHaveText('4');
  await page.getByTestId('remove-line').click();
  await expect(page.getByTestId('cart-empty')).toBeVisible();
  expect(errors).toEqual([]);
});

test('the cart badge stays current: after an order takes lines out, after a cancel, and when another tab adds', async ({ page, request }, testInfo) => {
  const account = await registerViaApi(request, 'badge');
  await signIn(page, account);
  await addToCart(page, 'Merino Wool Socks', 2);
  await addToCart(page, 'Washi Tape Set', 1);
  await expect(page.getByTestId('cart-count')).toHaveText('3');

  // Ordering one seller's group takes its lines out of the cart.
  await open(page, '/cart');
  await page.getByTestId('checkout-group').filter({ hasText: 'Paper & Ink' }).click();
  await expect(page.getByTestId('checkout-form')).toBeVisible();
  await fillAddress(page);
  await page.getByTestId('place-order').click();
  await expect(page.getByTestId('order-placed')).toBeVisible();
  await expect(page.getByTestId('cart-count')).toHaveText('2');

  // Cancelling the order does not put the lines back; the badge still says what the cart holds.
  await page.getByTestId('cancel-order').click();
  await expect(page.getByTestId('order-status')).toHaveText('Cancelled');
  await expect(page.getByTestId('cart-count')).toHaveText('2');

  // Another tab adds; coming back to this one shows it.
  const other = await page.context().newPage();
  await addToCart(other, 'Bottled Ink, Midnight Blue', 1);
  await expect(other.getByTestId('cart-count')).toHaveText('3');
  await page.bringToFront();
  await page.evaluate(() => window.dispatchEvent(new Event('focus')));
  await expect(page.getByTestId('cart-count')).toHaveText('3');
  await snap(page, testInfo, 'badge-after-second-tab');
});
