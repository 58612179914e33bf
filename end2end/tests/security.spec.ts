import { test, expect, APIRequestContext } from '@playwright/test';
import { open, uniqueEmail } from './helpers';

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
