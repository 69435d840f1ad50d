//! `wxbridge-admin`: what an operator runs against a deployment, with the functions'
//! environment (`WXBRIDGE_CONFIG` / `WXBRIDGE_CONFIG_FILE` / `WXBRIDGE_CONFIG_SECRET`,
//! `TABLE_NAME`, the AWS credentials and region).
//!
//! `wxbridge-admin sub-merchants register [--channel ID]` registers (or updates) every
//! partner's sub-merchant the configuration declares, in each channel (or the one named),
//! and keeps the `business_id` WeChat gave in the table; run it again at will — what is
//! registered as configured is left alone. `wxbridge-admin sub-merchants list` shows what
//! the table holds. Exits non-zero when any partner was not registered.

use wxbridge_core::config::DialogMode;
use wxbridge_core::ports::store::SubMerchantStore;
use wxbridge_core::services::sub_merchants::registration::register_all;
use wxbridge_lambda::bootstrap::{CallBudget, Deployment, Error, Needs};

const USAGE: &str = "\
usage: wxbridge-admin sub-merchants register [--channel ID]
       wxbridge-admin sub-merchants list [--channel ID]

Reads the deployment as its functions do: the configuration from WXBRIDGE_CONFIG,
WXBRIDGE_CONFIG_FILE or WXBRIDGE_CONFIG_SECRET, the table from TABLE_NAME, AWS from the
usual environment (AWS_REGION, credentials, AWS_ENDPOINT_URL for a local emulator).";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, channel) = match args.as_slice() {
        [group, command] if group == "sub-merchants" => (command.as_str(), None),
        [group, command, flag, id] if group == "sub-merchants" && flag == "--channel" => {
            (command.as_str(), Some(id.as_str()))
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let deployment = Deployment::start(Needs::Partners, CallBudget::Consuming).await?;
    let config = &deployment.config;
    if config.dialog.mode != DialogMode::SubMerchant {
        eprintln!("the configuration's dialog.mode is not sub_merchant: nothing to register");
        std::process::exit(2);
    }
    let channels: Vec<_> = config
        .channels
        .iter()
        .filter(|c| channel.is_none_or(|id| c.id == id))
        .filter(|c| c.app_secret.is_some())
        .collect();
    if channels.is_empty() {
        eprintln!(
            "no channel with an app_secret{}",
            channel.map(|c| format!(" named {c}")).unwrap_or_default()
        );
        std::process::exit(2);
    }
    let bridge = deployment.bridge()?;
    let mut failed = 0;
    for channel in channels {
        match command {
            "register" => {
                let images = deployment.images()?;
                for partner in register_all(&bridge, &images.source, channel).await? {
                    match partner.outcome {
                        Ok((done, business_id)) => println!(
                            "{}\t{}\t{}\tbusiness_id {business_id}\t{}",
                            channel.id,
                            partner.partner,
                            partner.account_name,
                            done.as_str()
                        ),
                        Err(error) => {
                            failed += 1;
                            println!(
                                "{}\t{}\t{}\tnot registered: {error}",
                                channel.id, partner.partner, partner.account_name
                            );
                        }
                    }
                }
            }
            "list" => {
                for kept in bridge.store.sub_merchants(&channel.id).await? {
                    println!(
                        "{}\t{}\t{}\tbusiness_id {}\t{}",
                        kept.channel,
                        kept.partner,
                        kept.account_name,
                        kept.business_id,
                        kept.nickname
                    );
                }
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} sub-merchant(s) not registered");
        std::process::exit(1);
    }
    Ok(())
}
