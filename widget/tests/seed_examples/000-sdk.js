import { ChatSupportAI } from 'supportgenie-sdk';
// Initialize the SDK with your API key
const client = new ChatSupportAI({
apiKey: 'YOUR_API_KEY',
widgetId: 'YOUR_WIDGET_ID'
});
// Send a message
const response = await client.sendMessage({
message: 'Hello, I have a question about your service',
sessionId: 'unique_session_id'
});
// Scrape a URL
const scrapedData = await client.scrapeUrl({
url: 'https://example.com/about-us'
});
// Get widget configuration
const config = await client.getWidgetConfig();
