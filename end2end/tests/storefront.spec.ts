import { test, expect } from './fixtures';
import { open, snap, demoBuyer, uniqueEmail } from './helpers';

test('a visitor browses the catalog and opens a product', async ({ page }, testInfo) => {
  await open(page, '/');
  const cards = page.getByTestId('product-card');
  await expect(cards.first()).toBeVisible();
  expect(await cards.count()).toBeGreaterThanOrEqual(24);
  await snap(page, testInfo, 'catalog');

  const first = cards.first();
  const title = (await first.locator('.title').textContent())!.trim();
  const price = (await first.locator('.price').textContent())!.trim();
  await first.click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(title);
  await expect(page.getByTestId('price')).toHaveText(price);
  await expect(page.getByTestId('stock')).toContainText(/in stock|Sold out/);
  await snap(page, testInfo, 'product');
});

test('a sold-out product says so', async ({ page }) => {
  await open(page, '/');
  await expect(page.getByTestId('product-grid')).toContainText('Sold out');
});

test('an unknown product shows a friendly 404 page', async ({ page }, testInfo) => {
  const response = await page.goto('/products/999999');
  expect(response!.status()).toBe(404);
  await expect(page.getByTestId('not-found')).toContainText("We couldn't find that page");
  await snap(page, testInfo, 'not-found');
  await page.getByRole('link', { name: 'Back to the shop' }).click();
  await expect(page.getByTestId('product-card').first()).toBeVisible();
});

test('a new shopper registers, is signed in, signs out and signs back in', async ({ page }, testInfo) => {
  const email = uniqueEmail('new');
  await open(page, '/register');
  await page.getByLabel('Name').fill('Nora New');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('a good long password');
  await snap(page, testInfo, 'register-form');
  await page.getByRole('button', { name: 'Create account' }).click();

  await expect(page.getByTestId('signed-in-as')).toHaveText('Nora New');
  await expect(page).toHaveURL(/\/$/);
  await snap(page, testInfo, 'registered');

  // The session survives a reload: it is a real cookie, not page state.
  await page.reload();
  await expect(page.getByTestId('signed-in-as')).toHaveText('Nora New');

  await page.getByTestId('sign-out').click();
  await expect(page.getByTestId('sign-in-link')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('sign-in-link')).toBeVisible();

  await open(page, '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('a good long password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText('Nora New');
});

test('the demo buyer signs in; a wrong password is rejected with a clear message', async ({ page }, testInfo) => {
  await open(page, '/login');
  await page.getByLabel('Email').fill(demoBuyer.email);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('form-error')).toHaveText('Wrong email or password');
  await expect(page.getByTestId('sign-in-link')).toBeVisible();
  await snap(page, testInfo, 'wrong-password');

  await page.getByLabel('Password').fill(demoBuyer.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText(demoBuyer.name);
  await snap(page, testInfo, 'signed-in');
});

test('registering with a taken email explains the problem', async ({ page }, testInfo) => {
  await open(page, '/register');
  await page.getByLabel('Name').fill('Copy Cat');
  await page.getByLabel('Email').fill(demoBuyer.email);
  await page.getByLabel('Password').fill('another long password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('form-error')).toContainText('already exists');
  await snap(page, testInfo, 'email-taken');
});

test('a shopper changes their password, which signs out their other devices, then signs out everywhere', async ({ page, browser }, testInfo) => {
  const email = uniqueEmail('account');
  await open(page, '/register');
  await page.getByLabel('Name').fill('Ava Account');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('a good long password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText('Ava Account');

  // The same shopper on another device.
  const other = await (await browser.newContext()).newPage();
  await open(other, '/login');
  await other.getByLabel('Email').fill(email);
  await other.getByLabel('Password').fill('a good long password');
  await other.getByRole('button', { name: 'Sign in' }).click();
  await expect(other.getByTestId('signed-in-as')).toHaveText('Ava Account');

  await page.getByTestId('signed-in-as').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Your account');
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await page.getByLabel('Current password').fill('not my password');
  await page.getByLabel('New password (8 to 128 characters)').fill('an even better password');
  await page.getByTestId('change-password').click();
  await expect(page.getByTestId('form-error')).toContainText('Wrong email or password');
  await page.getByLabel('Current password').fill('a good long password');
  await page.getByTestId('change-password').click();
  await expect(page.getByTestId('password-changed')).toBeVisible();
  await snap(page, testInfo, 'account');

  await other.reload();
  await expect(other.getByTestId('sign-in-link')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('signed-in-as')).toHaveText('Ava Account');

  await page.getByTestId('sign-out-everywhere').click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByTestId('sign-in-link')).toBeVisible();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('an even better password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText('Ava Account');
});
