// Package examples holds the recipes of docs/sdks.md: how to put a
// resilient.Transport under stripe-go, aws-sdk-go-v2, go-github,
// openai-go, discordgo, slack-go, resty, go-retryablehttp,
// golang.org/x/oauth2 and otelhttp so that exactly one layer retries. Each recipe is a function of this package, quoted verbatim
// by the document, and its tests count the attempts a local fault server
// sees per failing call, with the SDK's defaults and with the recipe.
//
// It is a module of its own, so that no SDK enters the go.mod of
// github.com/resilienthttp/resilient. Run its tests with
//
//	cd examples && go test ./...
package examples
