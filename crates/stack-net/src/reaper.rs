//! Interfaces deleted in batches. The kernel ends every deletion request
//! with an RCU grace period under the RTNL lock (about 10 ms on a loaded
//! host), so containers taken away one by one make `down` wait that long
//! per veth, one after the other, however many run in parallel. Deletions
//! asked for while one batch runs are gathered into the next: their links
//! are put into a group of this process's own (pipelined on one netlink
//! socket) and the group is deleted with one request (`RTM_DELLINK` with
//! `IFLA_GROUP`), which the kernel does in one `unregister_netdevice_many`,
//! one grace period for the whole batch.

use futures::future::join_all;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::{Handle, LinkUnspec};

use crate::batch::Batcher;
use crate::error::{NetError, Result};
use crate::link;

/// Gathers link deletions into batches.
#[derive(Default)]
pub struct LinkReaper {
    batches: Batcher<Vec<String>, Result<()>>,
}

impl LinkReaper {
    /// Deletes the interfaces `names` (absent ones are fine: deleting one
    /// end of a veth pair removes the other); resolves once they are gone.
    pub async fn delete(&self, names: Vec<String>) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        match self.batches.submit(names.clone(), run).await {
            Some(result) => result,
            // The caller doing our batch was cancelled.
            None => delete_each(&link::connect()?, &names).await,
        }
    }
}

/// The group a batch's links are put in: of this process alone (never 0,
/// the default group every interface starts in), and only ever holding
/// links being deleted, so a leftover of a crashed batch is one to delete.
fn batch_group() -> u32 {
    0x4000_0000 | std::process::id()
}

async fn run(batch: Vec<Vec<String>>) -> Vec<Result<()>> {
    let h = match link::connect() {
        Ok(h) => h,
        Err(_) => {
            return batch
                .into_iter()
                .map(|_| link::connect().map(|_| ()))
                .collect();
        }
    };
    let names: Vec<&str> = batch
        .iter()
        .flat_map(|n| n.iter().map(String::as_str))
        .collect();
    if delete_group(&h, &names).await.is_ok() {
        return batch.iter().map(|_| Ok(())).collect();
    }
    // The group could not be deleted whole: each caller's links on their
    // own, so that each hears of its own failure.
    let mut answers = Vec::new();
    for names in &batch {
        answers.push(delete_each(&h, names).await);
    }
    answers
}

async fn delete_each(h: &Handle, names: &[String]) -> Result<()> {
    let mut first_err = None;
    for name in names {
        if let Err(e) = link::delete(h, name).await {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Puts the links into the batch group, then deletes the group.
async fn delete_group(h: &Handle, names: &[&str]) -> Result<()> {
    let group = batch_group();
    let found = join_all(names.iter().map(|name| link::get(h, name))).await;
    let tagged = join_all(
        found
            .into_iter()
            .zip(names)
            .filter_map(|(found, name)| match found {
                Ok(Some((index, _))) => Some(Ok((index, *name))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .map(|entry| async move {
                let (index, name) = entry?;
                let mut msg = LinkUnspec::new_with_index(index).build();
                msg.attributes.push(LinkAttribute::Group(group));
                match h.link().set(msg).execute().await {
                    Ok(()) => Ok(true),
                    Err(e) if link::errno(&e) == Some(libc::ENODEV) => Ok(false),
                    Err(source) => Err(NetError::Netlink {
                        op: format!("put {name} into group {group:#x}"),
                        source,
                    }),
                }
            }),
    )
    .await;
    let mut any = false;
    for t in tagged {
        any |= t?;
    }
    if !any {
        return Ok(());
    }
    let mut del = h.link().del(0);
    del.message_mut()
        .attributes
        .push(LinkAttribute::Group(group));
    match del.execute().await {
        Ok(()) => Ok(()),
        // Gone meanwhile (with their namespace, or their other end).
        Err(e) if link::errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(source) => Err(NetError::Netlink {
            op: format!("delete link group {group:#x}"),
            source,
        }),
    }
}
