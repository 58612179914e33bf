import { APIRequestContext, Page, expect, TestInfo } from '@playwright/test';

/** Opens a page and waits until it is hydrated (interactive), not just painted. */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** A screenshot kept with the test's artifacts. */
export async function snap(page: Page, testInfo: TestInfo, name: string) {
  await page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
}

export const demoBuyer = { email: 'buyer@ninefold.test', password: 'buyer-demo-pass', name: 'Bea Buyer' };

export function uniqueEmail(prefix: string) {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** Opens a product from the front page and presses "Buy now": the checkout page's order id and token. */
export async function openCheckout(page: Page, productTitle: string) {
  await open(page, '/');
  await page.getByTestId('product-card').filter({ hasText: productTitle }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(productTitle);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await page.getByTestId('buy-now').click();
  await expect(page).toHaveURL(/\/checkout\/\d{19}$/);
  await expect(page.getByTestId('checkout-form')).toBeVisible();
  const orderId = (await page.getByTestId('checkout-order-id').textContent())!.trim();
  const token = await page.locator('input[name="checkout_token"]').inputValue();
  const expectedTotal = await page.locator('input[name="expected_total_cents"]').inputValue();
  return { orderId, token, expectedTotal };
}

/** Fills the checkout's shipping address. */
export async function fillAddress(page: Page) {
  await page.getByLabel('Full name').fill('Bea Buyer');
  await page.getByLabel('Address', { exact: true }).fill('1 Tea Street');
  await page.getByLabel('City').fill('Leafton');
  await page.getByLabel('Postal code').fill('12345');
  await page.getByLabel('Country').fill('Netherlands');
}

/** An account made through the API, with its bearer token. */
export type ApiAccount = { email: string; password: string; name: string; token: string };

/** Registers and signs in through the API. Registering signs the request context in
 * with a cookie, so the calls say where they come from, as the shop's pages would. */
export async function accountViaApi(request: APIRequestContext, baseURL: string, role: 'buyer' | 'seller', name: string): Promise<ApiAccount> {
  const created = { email: uniqueEmail(role), password: 'api-account-pass', name };
  const headers = { Origin: baseURL };
  const registered = await request.post('/api/v1/auth/register', { data: { ...created, role }, headers });
  expect(registered.status(), await registered.text()).toBe(201);
  const { token } = await (await request.post('/api/v1/auth/login', { data: { email: created.email, password: created.password }, headers })).json();
  return { ...created, token };
}

/** Signs in on the sign-in page. */
export async function signInAs(page: Page, who: { email: string; password: string; name: string }) {
  await open(page, '/login');
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText(who.name);
}
