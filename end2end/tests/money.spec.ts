import { Page } from '@playwright/test';
import { test, expect } from './fixtures';
import { open, snap, uniqueEmail, openCheckout, fillAddress } from './helpers';

async function registerInBrowser(page: Page, prefix: string) {
  const name = `Payer ${prefix}`;
  await open(page, '/register');
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(uniqueEmail(prefix));
  await page.getByLabel('Password').fill('wallet-test-pass');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('signed-in-as')).toHaveText(name);
}

async function placeOrder(page: Page, title: string) {
  await openCheckout(page, title);
  await fillAddress(page);
  await page.getByTestId('place-order').click();
  await expect(page.getByTestId('order-status')).toHaveText('Awaiting payment');
  return (await page.getByTestId('order-id').textContent())!.trim();
}

test('top up, pay, land on the payment-success page, then see the order paid', async ({ page }, testInfo) => {
  await registerInBrowser(page, 'pay');
  const orderId = await placeOrder(page, 'Washi Tape Set');
  // An empty wallet cannot pay: the page says so and offers a top-up.
  await expect(page.getByTestId('top-up-link')).toBeVisible();
  await page.getByTestId('top-up-link').click();
  await expect(page.getByTestId('wallet-balance')).toHaveText('$0.00');

  await page.getByTestId('top-up-amount').fill('abc');
  await page.getByTestId('top-up').click();
  await expect(page.getByTestId('form-error')).toContainText('amount');
  await page.getByTestId('top-up-amount').fill('20.00');
  await page.getByTestId('top-up').click();
  await expect(page.getByTestId('wallet-balance')).toHaveText('$20.00');
  await expect(page.getByTestId('journal-entry')).toHaveCount(1);
  await snap(page, testInfo, 'wallet');

  await open(page, `/orders/${orderId}`);
  await page.getByTestId('pay-order').click();
  await expect(page).toHaveURL(new RegExp(`/orders/${orderId}/paid$`));
  await expect(page.getByTestId('payment-success')).toBeVisible();
  await expect(page.getByTestId('amount-paid')).toHaveText('$8.99');
  await expect(page.getByText('What happens next')).toBeVisible();
  await snap(page, testInfo, 'payment-success');

  await page.getByTestId('view-order').click();
  await expect(page).toHaveURL(new RegExp(`/orders/${orderId}$`));
  await expect(page.getByTestId('order-status')).toHaveText('Paid');

  await open(page, '/wallet');
  await expect(page.getByTestId('wallet-balance')).toHaveText('$11.01');
  await expect(page.getByTestId('journal-entry')).toHaveCount(2);

  // Cancelling before it ships refunds the wallet.
  await open(page, `/orders/${orderId}`);
  await page.getByTestId('cancel-order').click();
  await expect(page.getByTestId('order-status')).toHaveText('Cancelled');
  await open(page, '/wallet');
  await expect(page.getByTestId('wallet-balance')).toHaveText('$20.00');
  await snap(page, testInfo, 'refunded');
});

test('the reconciliation page is for admins only', async ({ page }) => {
  await open(page, '/login?next=/admin/reconcile');
  await page.getByLabel('Email').fill('admin@ninefold.test');
  await page.getByLabel('Password').fill('admin-demo-pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('reconcile-ok')).toBeVisible();
  await page.getByTestId('sign-out').click();
  await expect(page.getByTestId('sign-in-link')).toBeVisible();
  await open(page, '/login?next=/admin/reconcile');
  await page.getByLabel('Email').fill('buyer@ninefold.test');
  await page.getByLabel('Password').fill('buyer-demo-pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('not-found')).toBeVisible();
});
