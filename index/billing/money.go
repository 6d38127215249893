package billing

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/apd/v3"
)

// Money is computed with cockroachdb/apd, not shopspring/decimal: apd's
// operations take an explicit Context (precision, rounding mode) and report
// inexact results as conditions instead of rounding silently under a
// package-wide setting (shopspring's DivisionPrecision), so every place that
// rounds says how, and the one rounding this package does — half-even to the
// currency's minor unit, per line — is the only one there is. Prices are read
// from the attestation's JSON text as written, never through a float64.

// ErrUnknownCurrency is returned for a currency code that is not an ISO
// 4217 code this package knows the minor unit of: a line in it is not
// priced rather than rounded to a guessed number of digits.
var ErrUnknownCurrency = errors.New("unknown ISO 4217 currency")

// exact is the context of every sum and product: 34 significant digits
// (decimal128's) is far beyond any price times any count of events, and a
// result that would need more is an error (Inexact is trapped), never a
// silent rounding.
var exact = func() *apd.Context {
	c := apd.BaseContext.WithPrecision(34)
	c.Traps |= apd.Inexact | apd.Rounded
	c.Rounding = apd.RoundHalfEven
	return c
}()

// minorUnits are ISO 4217's minor units (digits after the decimal point)
// of the active currency codes; a code not listed has two.
var minorUnits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
	"UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// twoDigitCurrencies are the active ISO 4217 codes with two minor digits.
var twoDigitCurrencies = []string{
	"AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BMD", "BND",
	"BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CNY", "COP",
	"COU", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
	"GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD",
	"KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD",
	"MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
	"NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR",
	"SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
	"TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "USN", "UYU", "UZS", "VED", "VES", "WST", "XCD", "XCG",
	"YER", "ZAR", "ZMW", "ZWG",
}

func init() {
	for _, c := range twoDigitCurrencies {
		minorUnits[c] = 2
	}
}

// MinorUnits returns the number of digits after the decimal point of an
// ISO 4217 currency (JPY 0, EUR 2, KWD 3), or ErrUnknownCurrency.
func MinorUnits(currency string) (int, error) {
	n, ok := minorUnits[currency]
	if !ok {
		return 0, fmt.Errorf("%w %q: want a code such as EUR, USD or JPY", ErrUnknownCurrency, currency)
	}
	return n, nil
}

// Round rounds d half-even (banker's rounding: 0.125 → 0.12, 0.135 → 0.14)
// to minor digits after the point, the currency's minor unit. Rounding half
// to even makes the rounding errors of many lines cancel instead of drift
// upwards, as half-up does.
func Round(d *apd.Decimal, minor int) (*apd.Decimal, error) {
	c := apd.BaseContext.WithPrecision(40)
	c.Rounding = apd.RoundHalfEven
	out := new(apd.Decimal)
	if _, err := c.Quantize(out, d, int32(-minor)); err != nil {
		return nil, fmt.Errorf("round %s to %d digits: %w", d, minor, err)
	}
	return out, nil
}

// mul is a × b, exactly.
func mul(a, b *apd.Decimal) (*apd.Decimal, error) {
	out := new(apd.Decimal)
	if _, err := exact.Mul(out, a, b); err != nil {
		return nil, fmt.Errorf("%s × %s: %w", a, b, err)
	}
	return out, nil
}

// add is a + b, exactly.
func add(a, b *apd.Decimal) (*apd.Decimal, error) {
	out := new(apd.Decimal)
	if _, err := exact.Add(out, a, b); err != nil {
		return nil, fmt.Errorf("%s + %s: %w", a, b, err)
	}
	return out, nil
}

// sub is a − b, exactly.
func sub(a, b *apd.Decimal) (*apd.Decimal, error) {
	out := new(apd.Decimal)
	if _, err := exact.Sub(out, a, b); err != nil {
		return nil, fmt.Errorf("%s − %s: %w", a, b, err)
	}
	return out, nil
}

// Split divides a line's gross, already rounded to the minor unit, into
// the platform's and the publisher's shares: the platform's share is
// gross × platformPercent / 100 rounded half-even to the minor unit, and
// the publisher's is the remainder, gross − platform. So platform +
// publisher = gross exactly on every line, whatever the percentages, and
// the rounding cent (if any) goes to the publisher when the platform's
// exact share rounds down.
func Split(gross, platformPercent *apd.Decimal, minor int) (platform, publisher *apd.Decimal, err error) {
	p, err := mul(gross, platformPercent)
	if err != nil {
		return nil, nil, err
	}
	p.Exponent -= 2 // ÷ 100, exactly
	if platform, err = Round(p, minor); err != nil {
		return nil, nil, err
	}
	if publisher, err = sub(gross, platform); err != nil {
		return nil, nil, err
	}
	return platform, publisher, nil
}

// Format writes d with exactly minor digits after the point ("12.30",
// "1200", "0.125"): the decimal string money is shown and signed as.
func Format(d *apd.Decimal, minor int) string {
	r, err := Round(d, minor)
	if err != nil {
		return d.Text('f')
	}
	if r.IsZero() {
		r.Negative = false // never "-0.00"
	}
	return r.Text('f')
}

// ParseAmount reads a decimal string ("4.50", "1e2" is refused): the form
// prices are written in, with no exponent, NaN or infinity.
func ParseAmount(s string) (*apd.Decimal, error) {
	d, _, err := apd.NewFromString(s)
	if err != nil || d.Form != apd.Finite {
		return nil, fmt.Errorf("amount %q: want a decimal number such as 4.50", s)
	}
	for _, r := range s {
		if r == 'e' || r == 'E' {
			return nil, fmt.Errorf("amount %q: write it without an exponent, such as 100", s)
		}
	}
	return d, nil
}
