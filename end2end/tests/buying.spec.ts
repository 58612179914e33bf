import { Page } from '@playwright/test';
import { test, expect } from './fixtures';
import { open, snap, demoBuyer, openCheckout, fillAddress } from './helpers';

async function signIn(page: Page) {
  await open(page, '/login');
  await page.getByLabel('Email').fill(demoBuyer.email);
  await page.getByLabel('Password').fill(demoBuyer.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText(demoBuyer.name);
}

async function myOrderRows(page: Page, orderId?: string) {
  await open(page, '/orders');
  const rows = page.getByTestId('my-order');
  await expect(page.getByRole('heading', { name: 'My orders' })).toBeVisible();
  return orderId ? rows.and(page.locator(`[data-order-id="${orderId}"]`)).count() : rows.count();
}

test('buy now, check out, double-click place: one order, shown once, even after reload, Back and a resubmit', async ({ page }, testInfo) => {
  await signIn(page);
  const { orderId, token, expectedTotal } = await openCheckout(page, 'Trail Backpack 28 l');
  await expect(page.getByTestId('checkout-total')).toHaveText('$89.00');
  await fillAddress(page);
  await snap(page, testInfo, 'checkout');

  await page.getByTestId('place-order').dblclick();
  await expect(page).toHaveURL(new RegExp(`/orders/${orderId}\\?placed=1$`));
  await expect(page.getByTestId('order-placed')).toBeVisible();
  await expect(page.getByTestId('order-id')).toHaveText(orderId);
  await expect(page.getByTestId('order-status')).toHaveText('Awaiting payment');
  await expect(page.getByTestId('hold-expires')).toContainText('reserved until');
  await snap(page, testInfo, 'confirmation');

  // A reload shows the same order.
  await page.reload();
  await expect(page.getByTestId('order-id')).toHaveText(orderId);

  // Back to the checkout page: it sends the buyer to the order, not a new checkout.
  await page.goto(`/checkout/${orderId}`);
  await expect(page).toHaveURL(new RegExp(`/orders/${orderId}$`));
  await expect(page.getByTestId('order-id')).toHaveText(orderId);

  // The browser resubmitting the old form (what a reload after POST does).
  // A browser resubmitting a form sends its page's origin.
  const resubmit = await page.request.post('/fn/place_order', {
    headers: { Origin: new URL(page.url()).origin },
    form: { order_id: orderId, checkout_token: token, name: 'Bea Buyer', line1: '1 Tea Street', line2: '', city: 'Leafton', postal_code: '12345', country: 'Netherlands', expected_total_cents: expectedTotal },
    maxRedirects: 0,
  });
  expect(resubmit.status()).toBeLessThan(400);
  expect(resubmit.headers()['location'] ?? '').toContain(orderId);

  expect(await myOrderRows(page, orderId)).toBe(1);
  await snap(page, testInfo, 'my-orders');
});

test('pressing Enter twice on the checkout form places one order', async ({ page }) => {
  await signIn(page);
  const before = await myOrderRows(page);
  const { orderId } = await openCheckout(page, 'Headlamp 400 lm');
  await fillAddress(page);
  await page.getByLabel('Country').focus();
  // Two key presses in quick succession, wherever focus is by the second one.
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('order-id')).toHaveText(orderId);
  expect(await myOrderRows(page)).toBe(before + 1);
  expect(await myOrderRows(page, orderId)).toBe(1);
});

test('a signed-out visitor is asked to sign in before buying', async ({ page }) => {
  await open(page, '/');
  await page.getByTestId('product-card').filter({ hasText: 'Camp Stove' }).click();
  await expect(page.getByTestId('sign-in-to-buy')).toBeVisible();
  const checkout = await page.goto('/checkout/1000000000000777778');
  expect(checkout!.status()).toBeLessThan(500);
  await expect(page.getByRole('heading', { name: 'Sign in to continue' })).toBeVisible();
});

test('the buyer cancels an unpaid order and sees it cancelled', async ({ page }) => {
  await signIn(page);
  const { orderId } = await openCheckout(page, 'Brass Pencil');
  await fillAddress(page);
  await page.getByTestId('place-order').click();
  await expect(page.getByTestId('order-id')).toHaveText(orderId);
  await page.getByTestId('cancel-order').click();
  await expect(page.getByTestId('order-status')).toHaveText('Cancelled');
  await expect(page.getByTestId('hold-expires')).toHaveCount(0);
});
