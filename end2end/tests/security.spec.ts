import { APIRequestContext } from '@playwright/test';
import { test, expect } from './fixtures';
import { open, uniqueEmail, demoBuyer } from './helpers';

const demoBuyerEmail = demoBuyer.email;
const demoBuyerPassword = demoBuyer.password;

/** A new seller through the JSON API: its bearer token. */
async function newSeller(request: APIRequestContext) {
  const account = { email: uniqueEmail('xss-seller'), password: 'a good long password', name: 'Mallory Seller', role: 'seller' };
  expect((await request.post('/api/v1/auth/register', { data: account })).status()).toBe(201);
  const login = await request.post('/api/v1/auth/login', { data: { email: account.email, password: account.password } });
  return (await login.json()).token as string;
}

// The classic payloads a seller could put in a product title: each must stay text.
const payloads = [
  'Y</title><script>alert(3)</script>',
  'Z"><img src=x onerror=alert(4)>',
  'W</script><script>alert(5)</script>',
];

test('product titles holding markup open without running it and show literally', async ({ page, request }) => {
  const token = await newSeller(request);
  const dialogs: string[] = [];
  page.on('dialog', async (dialog) => { dialogs.push(dialog.message()); await dialog.dismiss(); });
  for (const title of payloads) {
    const created = await request.post('/api/v1/seller/products', {
      headers: { Authorization: `Bearer ${token}` },
      data: { title, description: `about ${title}`, price_cents: 1234, stock: 3, inventory_mode: 'reserve' },
    });
    expect(created.status()).toBe(201);
    const id = (await created.json()).id;
    // Twice: the first render fills the anonymous page cache, the second is served from it.
    for (let pass = 0; pass < 2; pass++) {
      await open(page, `/products/${id}`);
      await expect(page.getByRole('heading', { level: 1 })).toHaveText(title);
      expect(await page.title()).toBe(`${title} · Ninefold`);
    }
  }
  await open(page, '/');
  for (const title of payloads) {
    await expect(page.getByTestId('product-card').filter({ hasText: title })).toHaveCount(1);
  }
  expect(dialogs).toEqual([]);
});

/** The same server under another origin: localhost instead of 127.0.0.1 is another site to the browser. */
function otherOrigin(baseURL: string) {
  const url = new URL(baseURL);
  url.hostname = 'localhost';
  return url.origin;
}

/** From a document of `origin`, posts a real HTML form to `action` and returns the response. */
async function postFormFrom(page: import('@playwright/test').Page, origin: string, action: string, fields: Record<string, string>) {
  // A plain document of that origin (not one of the shop's pages, whose policy
  // lets forms post only to their own origin: exactly what an attacker's page would not have).
  await page.goto(`${origin}/healthz`);
  const answered = page.waitForResponse((response) => response.url() === action && response.request().method() === 'POST');
  await page.evaluate(({ action, fields }) => {
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = action;
    for (const [name, value] of Object.entries(fields)) {
      const input = document.createElement('input');
      input.name = name;
      input.value = value;
      form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
  }, { action, fields });
  const response = await answered;
  // The browser lands on the answer: wait for that before the next navigation.
  await page.waitForURL(action);
  return response;
}

test('a sign-in form posted from another site is refused: the victim is not put in the attacker\'s account', async ({ page, request, baseURL }) => {
  const attacker = { email: uniqueEmail('csrf-attacker'), password: 'a good long password', name: 'Mallory', role: 'buyer' };
  expect((await request.post('/api/v1/auth/register', { data: attacker })).status()).toBe(201);
  const response = await postFormFrom(page, otherOrigin(baseURL!), `${baseURL}/fn/sign_in`, { email: attacker.email, password: attacker.password });
  expect(response.status()).toBe(403);
  expect(await response.text()).toContain('cross_site_request');
  await open(page, '/');
  await expect(page.getByTestId('sign-in-link')).toBeVisible();
  expect((await page.context().cookies(baseURL!)).find((c) => c.name === 'nf_session')).toBeUndefined();
});

test('a sign-out form posted from another site leaves the shopper signed in', async ({ page, baseURL }) => {
  await open(page, '/login');
  await page.getByLabel('Email').fill(demoBuyerEmail);
  await page.getByLabel('Password').fill(demoBuyerPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toBeVisible();
  const response = await postFormFrom(page, otherOrigin(baseURL!), `${baseURL}/fn/sign_out`, {});
  expect(response.status()).toBe(403);
  await open(page, '/');
  await expect(page.getByTestId('signed-in-as')).toBeVisible();
});
